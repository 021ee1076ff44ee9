// leak_cpp.cpp - C++ leaks through operator new / new[].
//
//   make_widget()  new Widget        LEAKED 32 bytes (sizeof(Widget)), 1 block
//   make_array()   new int[10]       LEAKED 40 bytes, 1 block
//   use_containers(): a std::string of 40 chars (heap, 41 bytes) and a
//                  std::vector<int> of 100 elements (400 bytes), both destroyed.
//   main prints two lines with std::cout.
// Leaked: 72 bytes in 2 blocks, both "definitely lost".
// Runtime: libstdc++ allocates a 72,704-byte emergency exception pool at
// start-up, and std::cout output makes glibc allocate the stdout buffer
// (4096 bytes when stdout is a pipe or file); valgrind frees both before its
// summary (__gnu_cxx::__freeres, __libc_freeres), an LD_PRELOAD tracker
// normally sees them still reachable.
#include <iostream>
#include <string>
#include <vector>

#define KEEP(p) __asm__ volatile("" : : "g"(p) : "memory")

struct Widget {
    int id;
    double weight;
    char tag[16];
};
static_assert(sizeof(Widget) == 32, "Widget is 32 bytes");

__attribute__((noinline)) void make_widget()
{
    Widget *w = new Widget{7, 1.5, "leaked widget"};
    KEEP(w);
}

__attribute__((noinline)) void make_array()
{
    int *a = new int[10]();
    KEEP(a);
}

__attribute__((noinline)) std::size_t use_containers()
{
    std::string s(40, 's');
    std::vector<int> v(100, 3);
    KEEP(s.data());
    KEEP(v.data());
    return s.size() + v.size();
}

int main()
{
    make_widget();
    make_array();
    std::size_t n = use_containers();
    std::cout << "leak_cpp: containers held " << n << " elements\n";
    std::cout << "leak_cpp: done" << std::endl;
    return 0;
}
