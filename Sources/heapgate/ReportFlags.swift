import ArgumentParser
import HeapGate

/// Flags shared by `run` and `summary`, spelled as valgrind spells them where valgrind has them.
/// What they mean, and everything done with them, is `ReportSettings`; their defaults are
/// `ReportSettings.standard`, which `heapgate run -- PROGRAM` uses without parsing (HeapGateMain).
struct ReportFlags: ParsableArguments {
    @Option(name: .customLong("json"), help: ArgumentHelp("Also write the machine-readable report to FILE.", valueName: "FILE"))
    var jsonPath: String?

    @Option(name: .customLong("num-callers"), help: "Frames shown per record, 1-500 (like valgrind's --num-callers).")
    var numCallers: Int = ReportSettings.standard.numCallers

    @Option(name: .customLong("log-file"), help: ArgumentHelp("Write the text report to FILE instead of stderr; %p becomes each process's pid (one file per process), %q{VAR} the environment variable VAR, %% a %, as in valgrind's.", valueName: "FILE"))
    var logFile: String?

    @Option(name: .customLong("xml"), help: ArgumentHelp("yes: also write memcheck's XML output (protocol 4) to --xml-file, for tools that read valgrind's.", valueName: "yes|no"))
    var xml: String = ReportSettings.standard.xml

    @Option(name: .customLong("xml-file"), help: ArgumentHelp("Where --xml=yes writes; %p, %q{VAR} and %% as in --log-file.", valueName: "FILE"))
    var xmlFile: String?

    @Flag(name: [.customShort("q"), .customLong("quiet")], help: "Print only the loss records shown (and warnings), as valgrind -q: no banner, no HEAP or LEAK SUMMARY; nothing when nothing leaked.")
    var quiet = ReportSettings.standard.quiet

    @Flag(name: .customLong("debuginfod"), help: "Let elfutils fetch missing debug info from $DEBUGINFOD_URLS (off by default: an unreachable server stalls each module for about 90 s).")
    var debuginfod = ReportSettings.standard.debuginfod

    @Option(name: .customLong("leak-check"), help: ArgumentHelp("no|summary|full: search for leaks at exit, and how much to print (yes: full, as valgrind takes it).", valueName: "no|summary|full"))
    var leakCheck: String = ReportSettings.standard.leakCheck

    @Option(name: .customLong("show-leak-kinds"), help: ArgumentHelp("Kinds of loss records to print: definite,indirect,possible,reachable, all or none.", valueName: "KINDS"))
    var showLeakKinds: String = ReportSettings.standard.showLeakKinds

    @Option(name: .customLong("errors-for-leak-kinds"), help: ArgumentHelp("Kinds that count as errors for --error-exitcode.", valueName: "KINDS"))
    var errorsForLeakKinds: String = ReportSettings.standard.errorsForLeakKinds

    @Option(name: .customLong("error-exitcode"), help: ArgumentHelp("Exit with N when any process has a leak of a kind in --errors-for-leak-kinds (after suppressions; with --leak-check=full only, as valgrind), or could not be checked (it sandboxed itself with seccomp, its exit-time scan could not run, or under run the started program left no whole trace).", valueName: "N"))
    var errorExitCode: Int32?

    @Option(name: .customLong("suppressions"), help: ArgumentHelp("Suppression file: valgrind's Memcheck:Leak blocks or LeakSanitizer's leak: lines. Repeatable.", valueName: "FILE"))
    var suppressionFiles: [String] = ReportSettings.standard.suppressionFiles

    @Option(name: .customLong("default-suppressions"), help: ArgumentHelp("yes (default): also apply heapgate's list for runtime one-time allocations (glibc, ld.so, libstdc++, Swift, Rust std).", valueName: "yes|no"))
    var defaultSuppressions: String = ReportSettings.standard.defaultSuppressions

    @Option(name: .customLong("gen-suppressions"), help: ArgumentHelp("yes or all: print a suppression after each loss record; no (default).", valueName: "no|yes|all"))
    var genSuppressions: String = ReportSettings.standard.genSuppressions

    func validate() throws { try settings.validate() }

    /// The flags as given, `--leak-check=yes` read as valgrind reads it (`full`).
    var settings: ReportSettings {
        ReportSettings(
            jsonPath: jsonPath, numCallers: numCallers, logFile: logFile, xml: xml, xmlFile: xmlFile, quiet: quiet,
            debuginfod: debuginfod, leakCheck: leakCheck == "yes" ? "full" : leakCheck, showLeakKinds: showLeakKinds,
            errorsForLeakKinds: errorsForLeakKinds, errorExitCode: errorExitCode, suppressionFiles: suppressionFiles,
            defaultSuppressions: defaultSuppressions, genSuppressions: genSuppressions)
    }
}
