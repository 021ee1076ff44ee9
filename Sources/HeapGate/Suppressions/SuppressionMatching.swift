/// Tries many stacks against one set of suppressions, remembering what each line said of each
/// frame.
///
/// A report tries every loss record against every suppression, and records share most of
/// their frames (the program's callers, the allocator's entry points). Matched afresh, the
/// same frames met the same lines again and again: `heapgate summary` of a python3 run
/// (18,614 records) spent three fifths of its time there. Here each distinct frame of a view
/// (`SuppressionMatcher.FrameRecipe`: the frame and how the view made it) and each distinct
/// line get a number, and a line's verdict on a frame is kept in a table.
final class SuppressionMatching {
    private let suppressions: [Suppression]
    /// What matching needs of each leak suppression, in order (a `Suppression` copied for
    /// each record retained every string in it).
    private let tried: [Tried]
    private let patterns: [SuppressionPattern]
    private var frameNumbers: [SuppressionMatcher.FrameRecipe: Int] = [:]
    private var frames: [SuppressionMatcher.Frame] = []
    /// verdicts[frame * patterns.count + line]: 0 not asked yet, 1 matches, 2 does not.
    private var verdicts: [UInt8] = []

    init(_ set: SuppressionSet) {
        suppressions = set.suppressions
        var numbers: [SuppressionPattern: Int] = [:]
        var patterns: [SuppressionPattern] = []
        let limit = max(set.numCallers ?? Int.max, 1)
        tried = set.suppressions.indices.compactMap { index in
            let suppression = set.suppressions[index]
            guard suppression.isLeakSuppression else { return nil }
            switch suppression.format {
            case .valgrind:
                let lines = suppression.frames.prefix(limit).map { pattern in
                    if let known = numbers[pattern] { return known }
                    numbers[pattern] = patterns.count
                    patterns.append(pattern)
                    return patterns.count - 1
                }
                return Tried(index: index, kinds: suppression.leakKinds, lines: lines, leakSanitizerPattern: nil)
            case .leakSanitizer:
                return Tried(index: index, kinds: suppression.leakKinds, lines: [], leakSanitizerPattern: suppression.pattern ?? "")
            }
        }
        self.patterns = patterns
    }

    private struct Tried {
        var index: Int
        var kinds: Set<LeakKind>
        /// valgrind: the location lines as numbers into `patterns`; lines past --num-callers
        /// left out, as valgrind stops reading there.
        var lines: [Int]
        /// LeakSanitizer: the pattern after `leak:`.
        var leakSanitizerPattern: String?
    }

    /// The first suppression that hides a leak of `kind` allocated at `frames`, as
    /// `SuppressionSet.firstMatch` says.
    func firstMatch(frames stack: [SuppressionFrame], kind: LeakKind) -> Suppression? {
        var views: [[Int]]?
        for candidate in tried where candidate.kinds.contains(kind) {
            if let pattern = candidate.leakSanitizerPattern {
                if SuppressionMatcher.leakSanitizerMatches(pattern, stack) { return suppressions[candidate.index] }
                continue
            }
            if views == nil { views = SuppressionMatcher.viewRecipes(of: stack).map { $0.map(number) } }
            let lines = candidate.lines
            let found = views!.contains { view in
                SuppressionMatcher.matches(lines: lines.count, frames: view.count, line: { self.patterns[lines[$0]] },
                                           lineMatchesFrame: { self.verdict(line: lines[$0], frame: view[$1]) })
            }
            if found { return suppressions[candidate.index] }
        }
        return nil
    }

    private func number(_ recipe: SuppressionMatcher.FrameRecipe) -> Int {
        if let known = frameNumbers[recipe] { return known }
        frameNumbers[recipe] = frames.count
        frames.append(SuppressionMatcher.frame(recipe))
        verdicts += repeatElement(0, count: patterns.count)
        return frames.count - 1
    }

    private func verdict(line: Int, frame: Int) -> Bool {
        let slot = frame * patterns.count + line
        if verdicts[slot] == 0 {
            verdicts[slot] = SuppressionMatcher.frameMatches(patterns[line], frames[frame]) ? 1 : 2
        }
        return verdicts[slot] == 1
    }
}
