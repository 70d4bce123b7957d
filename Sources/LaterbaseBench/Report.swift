import Foundation

/// The benchmark table, as Markdown.
struct Report {
    var machine = ""
    private var rows: [String] = []

    mutating func add(
        _ name: String, _ value: Double, unit: String, ratioTo ceiling: Double? = nil, target: Double? = nil,
        absolute: Bool = false, lowerIsBetter: Bool = false, note: String = ""
    ) {
        let ratio = ceiling.map { String(format: "%.2f", value / $0) } ?? ""
        var targetText = ""
        if let target {
            let measured = ceiling != nil && !absolute ? value / ceiling! : value
            let met = lowerIsBetter ? measured <= target : measured >= target
            targetText = (lowerIsBetter ? "≤ " : "≥ ") + Self.format(target) + (met ? " met" : " MISSED")
        }
        rows.append("| \(name) | \(Self.format(value)) \(unit) | \(ratio) | \(targetText) | \(note) |")
    }

    static func format(_ v: Double) -> String {
        if v >= 1000 { return String(Int(v.rounded())).reversed().enumerated().map { $0.offset > 0 && $0.offset % 3 == 0 ? "\($0.element)," : "\($0.element)" }.reversed().joined() }
        return String(format: v < 10 ? "%.2f" : "%.1f", v)
    }

    var markdown: String {
        """
        \(machine)

        | measure | result | ratio | target | note |
        | --- | --- | --- | --- | --- |
        \(rows.joined(separator: "\n"))
        """
    }
}

enum Machine {
    static func describe(_ dir: String) -> String {
        let cpu = ((try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = ProcessInfo.processInfo.physicalMemory >> 30
        return "Machine: \(cores) cores (\(cpu)), \(memory) GiB; data in \(dir); \(Date())"
    }
}
