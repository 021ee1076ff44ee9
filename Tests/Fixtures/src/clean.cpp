// clean.cpp - C++ that frees everything it allocates.
//
// new/delete of an object, new[]/delete[], a std::string (40 chars, heap),
// a std::vector<int> grown by push_back (several reallocations), a
// std::map<int, std::string> and a std::unique_ptr; all destroyed before
// main returns.  No iostream: output via write(2), so no stdio buffer.
// The only allocation left at exit is libstdc++'s 72,704-byte emergency
// exception pool (valgrind frees it via __gnu_cxx::__freeres; a tracker
// normally sees it still reachable).  Exit status 0.
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <unistd.h>

struct Point {
    double x, y;
};

__attribute__((noinline)) double use_heap()
{
    Point *p = new Point{1.0, 2.0};
    double sum = p->x + p->y;
    delete p;

    int *a = new int[25]();
    a[24] = 4;
    sum += a[24];
    delete[] a;

    std::string s(40, 'c');
    std::vector<int> v;
    for (int i = 0; i < 100; i++)
        v.push_back(i);
    std::map<int, std::string> m;
    for (int i = 0; i < 5; i++)
        m[i] = std::string(20 + i, 'm');
    auto u = std::make_unique<Point>(Point{3.0, 4.0});
    sum += s.size() + v.size() + m.size() + u->x;
    return sum;
}

int main()
{
    double sum = use_heap();
    static const char msg[] = "clean_cpp: done\n";
    if (write(1, msg, sizeof msg - 1) < 0)
        return 1;
    return sum == 155.0 ? 0 : 1;
}
