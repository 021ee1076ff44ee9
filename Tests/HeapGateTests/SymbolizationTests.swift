import Foundation
import Testing
@testable import HeapGate

// The mangled names below were produced by real compilers (g++ 12, swiftc 6.3, rustc 1.95 with
// `-C symbol-mangling-version=v0` or the default legacy scheme) and read back with `nm`. The expected
// Rust output is what `c++filt` (binutils 2.40) prints, minus the `[hash]` crate disambiguators and the
// `: usize` const annotations, i.e. rustc-demangle's alternate `{:#}` form.

/// Namespace so that `swift test --filter Symbolization` selects all of these suites.
enum SymbolizationTests {}

extension SymbolizationTests {
    @Suite struct DemanglerTests {
        @Test(arguments: [
            ("_ZNK2ns6Widget6methodEi", "ns::Widget::method(int) const"),
            ("_ZN2ns6Widget5twiceIlEET_S2_", "long ns::Widget::twice<long>(long)"),
            ("_ZNSt6vectorIiSaIiEE9push_backERKi", "std::vector<int, std::allocator<int> >::push_back(int const&)"),
            ("_ZN3foo3barE", "foo::bar"),  // C++ `_ZN…E` without a Rust hash element
        ])
        func cxx(mangled: String, expected: String) {
            #expect(Demangler.demangle(mangled) == expected)
        }

        @Test(arguments: [
            ("$s4demo1KC5hello4nameS2S_tF", "demo.K.hello(name: Swift.String) -> Swift.String"),
            ("$s4demo3BoxV3getxyF", "demo.Box.get() -> A"),
        ])
        func swift(mangled: String, expected: String) {
            #expect(Demangler.demangle(mangled) == expected)
        }

        @Test(arguments: [
            ("_ZN1a4main17h1854dee5fd9945b4E", "a::main"),
            ("_ZN1a4main28_$u7b$$u7b$closure$u7d$$u7d$17h101f1f748b98cc76E", "a::main::{{closure}}"),
            ("_ZN33_$LT$$RF$str$u20$as$u20$a..Tr$GT$2go17h1a4c8d0e9c5266b5E", "<&str as a::Tr>::go"),
            ("_ZN63_$LT$a..Foo$LT$$u5b$u8$u3b$$u20$4$u5d$$GT$$u20$as$u20$a..Tr$GT$2go17h6dabbdb72fc109a1E",
             "<a::Foo<[u8; 4]> as a::Tr>::go"),
            ("_ZN3std11collections4hash3map28HashMap$LT$K$C$V$C$S$C$A$GT$3get17h86cac3f66ab01a8fE",
             "std::collections::hash::map::HashMap<K,V,S,A>::get"),
            ("_ZN4core9core_arch3x8666_$LT$impl$u20$core..core_arch..simd..Simd$LT$i8$C$16_usize$GT$$GT$8as_m128i17hb1abb09f752ef085E",
             "core::core_arch::x86::<impl core::core_arch::simd::Simd<i8,16_usize>>::as_m128i"),
            ("_ZN1a4main17h1854dee5fd9945b4E.llvm.1234ABCD", "a::main"),
            ("_ZN1a4main17h1854dee5fd9945b4E.cold", "a::main.cold"),
        ])
        func rustLegacy(mangled: String, expected: String) {
            #expect(Demangler.demangle(mangled) == expected)
        }

        @Test(arguments: [
            // crate root, nested value namespace
            ("_RNvCs6xxl1lAjzDf_1a4main", "a::main"),
            // closures (uppercase namespace with disambiguator), backref to the crate
            ("_RNCNvCs6xxl1lAjzDf_1a4mains0_0B3_", "a::main::{closure#2}"),
            // inherent impl `M` with generic args and an instantiating crate
            ("_RNvMCs6xxl1lAjzDf_1aINtB2_3FooyE3getB2_", "<a::Foo<u64>>::get"),
            // trait impls `X`, &str, arrays with const length
            ("_RNvXs0_Cs6xxl1lAjzDf_1aReNtB5_2Tr2go", "<&str as a::Tr>::go"),
            ("_RNvXs_Cs6xxl1lAjzDf_1aINtB4_3FooAhj4_ENtB4_2Tr2go", "<a::Foo<[u8; 4]> as a::Tr>::go"),
            ("_RNvMs1_Cs6xxl1lAjzDf_1aINtB5_3ArrKj7_E1nB5_", "<a::Arr<7>>::n"),
            // trait definition `Y`, shims, tuple types
            ("_RNSNvYNCNvCs6xxl1lAjzDf_1a4mains0_0INtNtNtCsgEmfK2I1SDS_4core3ops8function6FnOnceThEE9call_once6vtableB8_",
             "<a::main::{closure#2} as core::ops::function::FnOnce<(u8,)>>::call_once::{shim:vtable#0}"),
            // generic function in value position (`::<`), fn pointer type, unit
            ("_RINvNtNtCsjrHSEGnQ3l9_3std3sys9backtrace28___rust_begin_short_backtraceFEuuECs6xxl1lAjzDf_1a",
             "std::sys::backtrace::__rust_begin_short_backtrace::<fn(), ()>"),
            ("_RINvMs2_NtCsgEmfK2I1SDS_4core3fmtNtB6_9Arguments3newKjd_Kj1_ECs6xxl1lAjzDf_1a",
             "<core::fmt::Arguments>::new::<13, 1>"),
            // slices, references with erased lifetimes, the never type
            ("_RINvMs0_NtNtNtNtCsjrHSEGnQ3l9_3std3sys12thread_local6native4lazyINtB6_7StorageINtNtCsgEmfK2I1SDS_4core4cell4CellTyyEEzE11get_or_initNvNvNvMNtNtBe_4hash6randomNtB2d_11RandomState3new4KEYS27___rust_std_internal_init_fnECs6xxl1lAjzDf_1a",
             "<std::sys::thread_local::native::lazy::Storage<core::cell::Cell<(u64, u64)>, !>>::get_or_init::<<std::hash::random::RandomState>::new::KEYS::__rust_std_internal_init_fn>"),
            // fn types: binders, unsafe, ABIs, variadics
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WFG_RL0_eERL0_eE2idB2_", "<b::W<for<'a> fn(&'a str) -> &'a str>>::id"),
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WFK6systemEuE2idB2_", "<b::W<extern \"system\" fn()>>::id"),
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WFUKCOhvExE2idB2_", "<b::W<unsafe extern \"C\" fn(*mut u8, ...) -> i64>>::id"),
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WTaAmj3_uTfEPuSQnEE2idB2_",
             "<b::W<(i8, [u32; 3], (), (f32,), *const (), [&mut i128])>>::id"),
            // dyn traits with associated type bindings, auto traits and higher-ranked lifetimes
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WDINtNtNtCsgEmfK2I1SDS_4core3ops8function2FnThEEp6OutputtNtNtBy_6marker4SendEL_E2idB2_",
             "<b::W<dyn core::ops::function::Fn<(u8,), Output = u16> + core::marker::Send>>::id"),
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WDG_INtNtNtCsgEmfK2I1SDS_4core3ops8function2FnTRL0_hEEp6OutputRL0_hEL_E2idB2_",
             "<b::W<dyn for<'a> core::ops::function::Fn<(&'a u8,), Output = &'a u8>>>::id"),
            ("_RNvMCsj6gjteTz5uu_1bINtB2_1WDNtNtNtNtCsgEmfK2I1SDS_4core4iter6traits8iterator8Iteratorp4ItemhEL_E2idB2_",
             "<b::W<dyn core::iter::traits::iterator::Iterator<Item = u8>>>::id"),
            // bool, char and negative const generics
            ("_RNvMs_Csj6gjteTz5uu_1bINtB4_1CKb1_Kc78_Kln5_E1fB4_", "<b::C<true, 'x', -5>>::f"),
            ("_RNvMs_Csj6gjteTz5uu_1bINtB4_1CKb0_Kca_Kl186a0_E1fB4_", "<b::C<false, '\\n', 100000>>::f"),
            // punycode identifiers
            ("_RNvNtCsj6gjteTz5uu_1bu9gre_6ka8iu9gre_6ka8l", "b::größe::grüße"),
            ("_RNvNtCsj6gjteTz5uu_1bu9gre_6ka8iu6wgv71a", "b::größe::日本"),
            // compiler-added suffixes: `.llvm.<hex>` dropped, others kept
            ("_RNvCs6xxl1lAjzDf_1a4main.llvm.8F3A", "a::main"),
            ("_RNvNtNtCsjrHSEGnQ3l9_3std6thread11main_thread4MAIN.0", "std::thread::main_thread::MAIN.0"),
        ])
        func rustV0(mangled: String, expected: String) {
            #expect(Demangler.demangle(mangled) == expected)
        }

        @Test(arguments: [
            "main", "malloc", "", "_Z", "_Zfoo", "$", "_R", "_RNvC", "_RNvC1a", "_RB_", "_RNvB_1a",
            "_RNvCs6xxl1lAjzDf_1a4main_trailing", "_R0NvC1a1f", "_RINvC1a1fKRe3foo_E",
            "_T0",
        ])
        func notMangledOrUnsupportedStaysUnchanged(symbol: String) {
            #expect(Demangler.demangle(symbol) == symbol)
        }

        @Test func hostileV0InputDoesNotTrap() {
            // Deep nesting would overflow the stack without the depth limit.
            let deep = "_RNvC1a1f" + String(repeating: "INvC1a1f", count: 5_000)
            #expect(Demangler.demangle(deep) == deep)
            let deepTypes = "_RINvC1a1f" + String(repeating: "A", count: 10_000) + "hKj1_E"
            #expect(Demangler.demangle(deepTypes) == deepTypes)

            // Each tuple repeats the previous one twice through backrefs: 2^40 `u8`s if printed in full.
            #expect(Demangler.demangle(backrefBomb(levels: 1)) == "a::f::<(u8,), ((u8,), (u8,))>")
            let bomb = backrefBomb(levels: 40)
            #expect(Demangler.demangle(bomb) == bomb)
        }

        /// `_R I Nv C1a 1f  T h E  T B<t0> B<t0> E  T B<t1> B<t1> E … E`: each generic argument is a tuple
        /// holding the previous argument twice.
        private func backrefBomb(levels: Int) -> String {
            var body = "INvC1a1fThE"
            var previous = "INvC1a1f".utf8.count
            for _ in 0..<levels {
                let start = body.utf8.count
                body += "TB\(base62(previous))B\(base62(previous))E"
                previous = start
            }
            return "_R" + body + "E"
        }

        private func base62(_ value: Int) -> String {
            if value == 0 { return "_" }
            let digits = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            var n = value - 1
            var text = ""
            repeat {
                text.insert(digits[n % 62], at: text.startIndex)
                n /= 62
            } while n > 0
            return text + "_"
        }
    }
}

extension SymbolizationTests {
    /// Compiles tiny programs at test time with `cc`/`c++` and checks what `Symbolizer` reports.
    @Suite struct SymbolizerTests {
        static let hasCompiler = FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/nm")

        static let plainSource = """
            #include <stdio.h>
            int target_function(int x) { /* ENTRY */
                return x * 2 + 1;
            }
            int main(int argc, char **argv) { printf("%d\\n", target_function(argc)); return 0; }
            """

        @Test(.enabled(if: hasCompiler))
        func nonPIEExecutableAtBaseZero() throws {
            let program = try Program(source: Self.plainSource, flags: ["-g", "-O0", "-no-pie"])
            let address = try program.symbolAddress("target_function")
            let frames = Symbolizer().symbolize(address: address, in: ModuleImage(path: program.binary, base: 0))
            #expect(frames == [SourceFrame(function: "target_function", file: program.source,
                                           line: program.line(of: "/* ENTRY */"), isInlined: false)])
        }

        @Test(.enabled(if: hasCompiler))
        func pieExecutableAtLoadBias() throws {
            let program = try Program(source: Self.plainSource, flags: ["-g", "-O0", "-fPIE", "-pie"])
            let base: UInt64 = 0x5555_5555_4000
            let address = try program.symbolAddress("target_function") + 4  // inside the prologue
            let frames = Symbolizer().symbolize(address: base + address, in: ModuleImage(path: program.binary, base: base))
            #expect(frames.count == 1)
            #expect(frames.first?.function == "target_function")
            #expect(frames.first?.file == program.source)
            #expect(frames.first?.line == program.line(of: "/* ENTRY */"))
            #expect(frames.first?.isInlined == false)
        }

        /// `helper` is forced inline into `caller`; an address inside the inlined code yields
        /// `[helper (isInlined, at the helper's own line), caller (not inlined, at the call site)]`.
        /// Also with split DWARF (`-gsplit-dwarf`, DWARF 4 and 5), whose functions and inlined
        /// calls are in the .dwo file beside the program: read from the skeleton unit alone, the
        /// inlined frame was missing and the caller shown at the helper's line.
        @Test(.enabled(if: hasCompiler), arguments: [
            ["-g", "-O2"], ["-g", "-O2", "-gsplit-dwarf", "-gdwarf-4"], ["-g", "-O2", "-gsplit-dwarf", "-gdwarf-5"],
        ])
        func inlinedFrameComesFirst(flags: [String]) throws {
            let program = try Program(source: """
                volatile int sink;
                static inline __attribute__((always_inline)) int helper(int x) {
                    return x * sink + 7; /* HELPER BODY */
                }
                __attribute__((noinline)) int caller(int x) {
                    int y = helper(x); /* CALL SITE */
                    return y + sink;
                }
                int main(int argc, char **argv) { return caller(argc); }
                """, flags: flags)
            let (start, size) = try program.symbolRange("caller")
            let symbolizer = Symbolizer()
            let image = ModuleImage(path: program.binary, base: 0)  // non-PIE or PIE: nm addresses are ELF vaddrs
            let inlined = (start..<start + size)
                .map { symbolizer.symbolize(address: $0, in: image) }
                .first { $0.count == 2 }
            let frames = try #require(inlined, "no address of caller() maps into the inlined helper()")
            #expect(frames[0] == SourceFrame(function: "helper", file: program.source,
                                             line: program.line(of: "/* HELPER BODY */"), isInlined: true))
            #expect(frames[1] == SourceFrame(function: "caller", file: program.source,
                                             line: program.line(of: "/* CALL SITE */"), isInlined: false))
        }

        @Test(.enabled(if: hasCompiler && FileManager.default.isExecutableFile(atPath: "/usr/bin/c++")))
        func cxxNamesComeFromTheLinkageName() throws {
            let program = try Program(source: """
                namespace ns { struct Widget { int method(int x) const; }; }
                int ns::Widget::method(int x) const { /* METHOD */
                    return x + 1;
                }
                int main() { return ns::Widget().method(1); }
                """, flags: ["-g", "-O0", "-no-pie"], compiler: "c++", fileExtension: "cpp")
            let address = try program.symbolAddress("_ZNK2ns6Widget6methodEi")
            let frames = Symbolizer().symbolize(address: address, in: ModuleImage(path: program.binary, base: 0))
            #expect(frames.map(\.function) == ["ns::Widget::method(int) const"])
            #expect(frames.first?.line == program.line(of: "/* METHOD */"))
        }

        /// GCC's copies of a function (`.constprop.0`, `.isra.0`, the `.cold` half of a split one)
        /// have DWARF under the original's name; memcheck names the frame by the copy's symbol, in
        /// the report and in `fun:` lines, so a suppression it wrote for the copy must match.
        @Test(.enabled(if: hasCompiler && FileManager.default.isExecutableFile(atPath: "/usr/bin/c++")))
        func compilerCopiesAreNamedByTheirSymbol() throws {
            let source = """
                #include <stdlib.h>
                #include <stdio.h>
                void *keep;
                __attribute__((cold, noinline)) void report(void *p) { fprintf(stderr, "%p", p); }
                static __attribute__((noinline)) void *copied(unsigned long n, int flag) {
                    void *p = malloc(n + flag); /* COPIED */
                    __asm__ volatile("" ::"r"(p) : "memory");
                    return p;
                }
                NS_OPEN __attribute__((noinline)) int split(int x) {
                    int s = 0;
                    for (int i = 0; i < x; i++) s += i * x;
                    if (__builtin_expect(x > 3, 0)) { keep = malloc(x); report(keep); return s + 1; } /* COLD */
                    return s;
                } NS_CLOSE
                int main(int argc, char **argv) { keep = copied(13, 0); return NS split(argc); }
                """
            for (compiler, ext, ns) in [("cc", "c", false), ("c++", "cpp", true)] {
                let defines = ns ? ["-DNS_OPEN=namespace q {", "-DNS_CLOSE=}", "-DNS=q::"]
                                 : ["-DNS_OPEN=", "-DNS_CLOSE=", "-DNS="]
                let program = try Program(source: source, flags: ["-g", "-O2"] + defines, compiler: compiler, fileExtension: ext)
                let symbols = try Program.run("nm", [program.binary]).split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) }
                let copy = try #require(symbols.first { $0.contains("copied") && $0.contains(".") }, "no copy of copied() in \(symbols)")
                let cold = try #require(symbols.first { $0.hasSuffix(".cold") && $0.contains("split") }, "no split.cold in \(symbols)")
                let symbolizer = Symbolizer()
                let image = ModuleImage(path: program.binary, base: 0)
                let copyFrame = try #require(symbolizer.symbolize(address: try program.symbolAddress(copy) + 1, in: image).last)
                #expect(copyFrame.function == (ns ? Demangler.demangle(copy) : copy))
                #expect(copyFrame.linkageName == copy)
                let coldFrame = try #require(symbolizer.symbolize(address: try program.symbolAddress(cold) + 1, in: image).last)
                #expect(coldFrame.function == (ns ? "q::split(int) [clone .cold]" : "split.cold"))
                #expect(coldFrame.linkageName == cold)
                #expect(coldFrame.file == program.source)
            }
        }

        @Test(.enabled(if: hasCompiler))
        func symbolTableWithoutDebugInfo() throws {
            let program = try Program(source: Self.plainSource, flags: ["-O0", "-no-pie"])
            let address = try program.symbolAddress("target_function")
            let frames = Symbolizer().symbolize(address: address + 1, in: ModuleImage(path: program.binary, base: 0))
            #expect(frames == [SourceFrame(function: "target_function", file: nil, line: nil, isInlined: false)])
        }

        @Test(.enabled(if: hasCompiler))
        func resultsAreCachedPerModuleAndAddress() throws {
            let program = try Program(source: Self.plainSource, flags: ["-g", "-O0", "-no-pie"])
            let address = try program.symbolAddress("target_function")
            let image = ModuleImage(path: program.binary, base: 0)
            let symbolizer = Symbolizer()
            let first = symbolizer.symbolize(address: address, in: image)
            try FileManager.default.removeItem(atPath: program.binary)
            #expect(symbolizer.symbolize(address: address, in: image) == first)
            #expect(first.first?.function == "target_function")
        }

        @Test func missingOrInvalidFilesGiveAnUnknownFrame() throws {
            let unknown = [SourceFrame(function: nil, file: nil, line: nil, isInlined: false)]
            let symbolizer = Symbolizer()
            #expect(symbolizer.symbolize(address: 0x1000, in: ModuleImage(path: "/nonexistent/libnope.so", base: 0)) == unknown)
            let notELF = FileManager.default.temporaryDirectory.appendingPathComponent("heapgate-not-elf-\(UUID().uuidString)")
            try Data("not an ELF file".utf8).write(to: notELF)
            defer { try? FileManager.default.removeItem(at: notELF) }
            #expect(symbolizer.symbolize(address: 0x1000, in: ModuleImage(path: notELF.path, base: 0x4000)) == unknown)
            #expect(symbolizer.symbolize(address: 0x1000, in: ModuleImage(path: "/nonexistent/libnope.so", base: 0)) == unknown)
        }

        @Test func debuginfodIsDisabledByDefault() {
            setenv("DEBUGINFOD_URLS", "http://127.0.0.1:9/", 1)
            _ = Symbolizer()
            #expect(getenv("DEBUGINFOD_URLS") == nil)
        }

        /// The symbol index (one binary search per address) must name every address as
        /// `dwfl_module_addrinfo` does (one walk of the whole symbol table per address): at the
        /// edges and middle of symbols in a C, a C++, a Rust and a Swift fixture, libc, libstdc++
        /// and libswiftCore, whose large tables are why the index exists.
        @Test func symbolIndexAgreesWithLibdw() throws {
            let files = [
                Harness.fixture("leak_basic"), Harness.fixture("leak_cpp"), Harness.fixture("leak_rust"),
                Harness.fixture("leak_swift"), "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libstdc++.so.6", SuppressionTests.Defaults.swiftCore,
            ]
            let symbolizer = Symbolizer()
            for file in files where FileManager.default.fileExists(atPath: file) {
                // Every symbol of the small files; one in 29 of the large ones (libdw's own
                // look-up is what takes the time here).
                let (answered, _, differences) = symbolizer.checkSymbolIndex(path: file, stride: file.contains("/lib") ? 29 : 1)
                #expect(differences.isEmpty, "\(differences.prefix(5))")
                #expect(answered > 30, "\(file): the index answered only \(answered) addresses itself")
            }
        }

        /// A stripped program with a large .dynsym (gcc's cc1plus, which g++ brings: 30,592
        /// exported symbols, its other functions none): around its symbols lie addresses that no
        /// symbol covers and no label precedes, where the index says so itself (`noSymbol`)
        /// instead of asking libdw, whose walk of the table for each was a fifth of a report on
        /// g++. Its answers must be libdw's.
        @Test func symbolIndexKnowsWhereNoSymbolIs() throws {
            let gcc = "/usr/lib/gcc/x86_64-linux-gnu"
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: gcc)) ?? []
            let compiler = try #require(versions.map { "\(gcc)/\($0)/cc1plus" }.first { FileManager.default.fileExists(atPath: $0) },
                                        "g++ is installed with the tests' packages")
            let (answered, withoutSymbol, differences) = Symbolizer().checkSymbolIndex(path: compiler, stride: 7)
            #expect(differences.isEmpty, "\(differences.prefix(5))")
            #expect(answered > 1000)
            #expect(withoutSymbol > 100, "\(compiler): only \(withoutSymbol) addresses without a symbol")
        }

        /// The scope index (one walk per compile unit, then a binary search per address) must
        /// find the same chain of DWARF scopes as a walk over the unit for every address: at the
        /// start, middle and end of the functions of a C, a C++, a Rust and a Swift fixture (Rust
        /// nests its functions in namespaces, C++ in classes too) and of libc (libc6-dbg).
        @Test func scopeIndexAgreesWithTheWalk() throws {
            let files = [
                Harness.fixture("leak_basic"), Harness.fixture("leak_cpp"), Harness.fixture("leak_rust"),
                Harness.fixture("leak_swift"), "/lib/x86_64-linux-gnu/libc.so.6",
            ]
            let symbolizer = Symbolizer()
            for file in files where FileManager.default.fileExists(atPath: file) {
                let (checked, differences) = symbolizer.checkScopeIndex(path: file, stride: file.contains("/lib") ? 29 : 1)
                #expect(differences.isEmpty, "\(differences.prefix(5))")
                #expect(checked > 10, "\(file): only \(checked) addresses had DWARF scopes")
            }
        }
    }
}

extension SymbolizationTests {
    /// A C (or C++) program compiled into a fresh temporary directory, removed again on deinit.
    final class Program {
        let directory: URL
        let source: String
        let binary: String
        private let lines: [Substring]

        init(source text: String, flags: [String], compiler: String = "cc", fileExtension: String = "c") throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("heapgate-sym-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            source = directory.appendingPathComponent("prog.\(fileExtension)").path
            binary = directory.appendingPathComponent("prog").path
            lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            try text.write(toFile: source, atomically: true, encoding: .utf8)
            try Self.run(compiler, flags + ["-o", binary, source])
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        /// 1-based line of the first source line containing `marker`.
        func line(of marker: String) -> Int? {
            lines.firstIndex { $0.contains(marker) }.map { $0 + 1 }
        }

        /// ELF virtual address of `name`, from `nm`.
        func symbolAddress(_ name: String) throws -> UInt64 {
            try symbolRange(name).start
        }

        /// Address and size of `name`, from `nm -S`.
        func symbolRange(_ name: String) throws -> (start: UInt64, size: UInt64) {
            for row in try Self.run("nm", ["-S", binary]).split(separator: "\n") {
                let fields = row.split(separator: " ")
                if fields.count == 4, fields[3] == name, let start = UInt64(fields[0], radix: 16),
                   let size = UInt64(fields[1], radix: 16) {
                    return (start, size)
                }
            }
            throw ToolError(message: "\(name) not found by nm in \(binary)")
        }

        struct ToolError: Error, CustomStringConvertible {
            var message: String
            var description: String { message }
        }

        /// Runs a tool found on PATH and returns its standard output; throws on a non-zero exit.
        @discardableResult
        static func run(_ tool: String, _ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [tool] + arguments
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            let messages = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw ToolError(message: "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: messages, as: UTF8.self))")
            }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
