/*
 * destructor_frees.c - a program whose library frees memory in its destructor
 * (libdestructor_frees.c): 2 allocs, 1 free, 48 bytes in 1 block definitely lost at exit.
 */
int registry_size(void);

int main(void) {
    return registry_size() == 4 ? 0 : 1;
}
