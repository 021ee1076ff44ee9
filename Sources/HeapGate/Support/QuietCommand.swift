#if canImport(Glibc)
import Glibc
#endif

/// Runs a helper program with its output discarded and waits for it.
enum QuietCommand {
    /// Wraps posix_spawn (standard output and error to /dev/null, no other descriptor, the same
    /// environment) and waitpid: the status as a shell reports it (`TracedLaunch.shellStatus`),
    /// or nil when it could not be started or waited for.
    static func run(_ executable: String, _ arguments: [String]) -> Int32? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // Nothing else of this process's: libdw's descriptors, or a pipe a caller of heapgate
        // waits on, would otherwise stay open in the helper (Foundation's Process closed them too).
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        guard posix_spawn(&pid, executable, &actions, nil, argv, environ) == 0 else { return nil }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return nil }
        }
        return TracedLaunch.shellStatus(status)
    }
}
