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
    /// The temporary file's name is unique, so two threads saving to one path
    /// never write into each other's file: the last rename wins, whole.
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
            let (file, temporary) = try createTemporary(beside: path)
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

    /// A new file next to `path` (created exclusively, mode 0666 less the
    /// umask, as fopen would), open for writing, and its name.
    private static func createTemporary(beside path: String) throws -> (UnsafeMutablePointer<FILE>, String) {
        while true {
            let temporary = "\(path).aimetcle-tmp-\(getpid())-\(String(UInt32.random(in: .min ... .max), radix: 16))"
            let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if descriptor < 0 && errno == EEXIST { continue }
            guard descriptor >= 0, let file = fdopen(descriptor, "wb") else {
                let reason = String(cString: strerror(errno))
                if descriptor >= 0 {
                    close(descriptor)
                    unlink(temporary)
                }
                throw AimetError.io("cannot write '\(path)': \(reason)")
            }
            return (file, temporary)
        }
    }
}
