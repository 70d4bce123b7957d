import Foundation

#if FUZZING
import CLibFuzzer

/// The executable's entry point when built by ops/fuzz.sh (`-sanitize=fuzzer,address -D
/// FUZZING`): libFuzzer's driver, with the target named by `LATERBASE_FUZZ_TARGET`. SwiftPM
/// names an executable module's entry point `<module>_main`, so that is the symbol defined.
@_cdecl("LaterbaseFuzz_main")
public func laterbaseFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    _ = selectedTarget
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in laterbaseFuzzOneInput(data, size) }
}

/// What libFuzzer calls with each input.
@_cdecl("LLVMFuzzerTestOneInput")
public func laterbaseFuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["LATERBASE_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        fatalError("set LATERBASE_FUZZ_TARGET to one of \(FuzzTarget.allCases.map(\.rawValue))")
    }
    return target
}()
#else
/// Without libFuzzer: replays a corpus through the targets, so any build can re-run the seeds
/// and the crashes the fuzzer found. `laterbase-fuzz TARGET FILE_OR_FOLDER…`
@main
struct ReplayCorpus {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: laterbase-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE_OR_FOLDER…")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isFolder: ObjCBool = false
            FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
            let files = isFolder.boolValue ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
                bytes.withUnsafeBytes { target.run($0) }
                count += 1
            }
        }
        print("\(name): \(count) inputs replayed, no crash")
    }
}
#endif
