#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

/// Whole-file reads and atomic writes with errno-based messages.
public enum FileIO {
    public static func read(_ path: String) throws -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw AimetError.notFound("no such file: '\(path)'") }
            throw AimetError.io("cannot read '\(path)': \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw AimetError.io("cannot read '\(path)': not a regular file") }
        guard let file = fopen(path, "rb") else {
            throw AimetError.io("cannot read '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        let size = Int(info.st_size)
        var data = Data(count: size)
        let got = data.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, file) }
        guard got == size else { throw AimetError.io("cannot read '\(path)': read \(got) of \(size) bytes") }
        return data
    }

    /// Writes through a temporary file in the same folder, renamed over `path`
    /// when complete: a failure never leaves a half-written or damaged file.
    static func writeAtomically(_ data: Data, to path: String) throws {
        try writeAtomically([(data, path)])
    }

    /// Writes several files so that all are replaced or none: each goes to a
    /// temporary file first, and only when every one is complete are they
    /// renamed over their paths.
    public static func writeAtomically(_ files: [(Data, String)]) throws {
        var temporaries: [String] = []
        defer { for t in temporaries { unlink(t) } }
        for (data, path) in files {
            let temporary = "\(path).aimetcle-tmp-\(getpid())"
            guard let file = fopen(temporary, "wb") else {
                throw AimetError.io("cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
            temporaries.append(temporary)
            let written = data.withUnsafeBytes { fwrite($0.baseAddress, 1, data.count, file) }
            let flushed = fflush(file) == 0 && fsync(fileno(file)) == 0
            fclose(file)
            guard written == data.count, flushed else {
                throw AimetError.io("cannot write '\(path)': the disk may be full (\(written) of \(data.count) bytes written)")
            }
        }
        for (k, (_, path)) in files.enumerated() {
            guard rename(temporaries[k], path) == 0 else {
                throw AimetError.io("cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
        }
        temporaries.removeAll()
    }
}
