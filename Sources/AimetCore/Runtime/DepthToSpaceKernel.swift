/// DepthToSpace and SpaceToDepth on `[N, C, H, W]` with block size `b`: a
/// reshape, a transpose and a reshape (`Permutation.copy`).
///
/// - DepthToSpace DCR (default): `[N, b, b, C/b², H, W]`, perm `[0, 3, 4, 1, 5, 2]`
///   → `[N, C/b², H·b, W·b]`.
/// - DepthToSpace CRD: `[N, C/b², b, b, H, W]`, perm `[0, 1, 4, 2, 5, 3]`.
/// - SpaceToDepth DCR (default): `[N, C, H/b, b, W/b, b]`, perm `[0, 3, 5, 1, 2, 4]`
///   → `[N, C·b², H/b, W/b]`.
/// - SpaceToDepth CRD (the mode attribute of later opsets): perm `[0, 1, 3, 5, 2, 4]`.
final class DepthToSpaceKernel: Kernel {
    enum Kind: Sendable {
        case depthToSpaceDCR
        case depthToSpaceCRD
        case spaceToDepthDCR
        case spaceToDepthCRD
    }
    let kind: Kind
    let block: Int
    let slots: Int

    init(_ kind: Kind, block: Int, type: ElementType) throws {
        guard block >= 1, block <= 1 << 20 else { throw AimetError.invalid("blocksize \(block) is not a positive size") }
        self.kind = kind
        self.block = block
        slots = type.slots
    }

    func outputType(_ types: [ElementType]) throws -> ElementType { types[0] }

    func outputShape(_ shapes: [[Int]]) throws -> [Int] {
        let x = shapes[0]
        guard x.count == 4 else { throw AimetError.shape("the input has shape \(x); expected rank 4 [N, C, H, W]") }
        let b2 = block * block
        switch kind {
        case .depthToSpaceDCR, .depthToSpaceCRD:
            guard x[1] % b2 == 0 else { throw AimetError.shape("the channels \(x[1]) are not a multiple of blocksize² = \(b2)") }
            let (h, o1) = x[2].multipliedReportingOverflow(by: block), (w, o2) = x[3].multipliedReportingOverflow(by: block)
            guard !o1, !o2 else { throw AimetError.shape("the output of \(x) with blocksize \(block) is too large") }
            let out = [x[0], x[1] / b2, h, w]
            _ = try Shapes.count(out)
            return out
        case .spaceToDepthDCR, .spaceToDepthCRD:
            guard x[2] % block == 0, x[3] % block == 0 else {
                throw AimetError.shape("the spatial sizes \(x[2])×\(x[3]) are not multiples of blocksize \(block)")
            }
            return [x[0], x[1] * b2, x[2] / block, x[3] / block]
        }
    }

    func run(_ args: KernelArgs) throws {
        let x = args.shapes[0], b = block
        let (n, c, h, w) = (x[0], x[1], x[2], x[3])
        let shape: [Int], perm: [Int]
        switch kind {
        case .depthToSpaceDCR: (shape, perm) = ([n, b, b, c / (b * b), h, w], [0, 3, 4, 1, 5, 2])
        case .depthToSpaceCRD: (shape, perm) = ([n, c / (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3])
        case .spaceToDepthDCR: (shape, perm) = ([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4])
        case .spaceToDepthCRD: (shape, perm) = ([n, c, h / b, b, w / b, b], [0, 1, 3, 5, 2, 4])
        }
        Permutation.copy(args.inputs[0], args.output, shape: shape, perm: perm, slotsPerElement: slots, workers: args.workers)
    }
}
