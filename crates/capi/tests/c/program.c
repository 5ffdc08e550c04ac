/* Exercises the C ABI: the seed's functions, class variants, bad input, release. Prints "ok" on success. */
#include "classalloc.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void) {
    /* The seed's contract: aligned to the next power of two, size passed back. */
    for (size_t size = 1; size <= 8192; size = size * 3 + 1) {
        size_t align = 1;
        while (align < size && align < 4096) align <<= 1;
        unsigned char *p = Malloc(size);
        CHECK(p != NULL && (uintptr_t)p % align == 0);
        memset(p, 0xAB, size);
        Free(p, size);
    }
    unsigned char *z = Calloc(1000);
    CHECK(z != NULL && z[0] == 0 && z[999] == 0);
    memset(z, 7, 1000);
    unsigned char *grown = Recalloc(z, 1000, 5000);
    CHECK(grown != NULL && grown[999] == 7 && grown[1000] == 0 && grown[4999] == 0);
    unsigned char *shrunk = Remalloc(grown, 5000, 10);
    CHECK(shrunk != NULL && shrunk[9] == 7);
    Free(shrunk, 10);

    /* Bad input: NULL, never a crash. */
    CHECK(Malloc(0) == NULL);
    CHECK(Malloc(SIZE_MAX) == NULL);
    CHECK(Calloc(SIZE_MAX - 4095) == NULL);
    CHECK(MallocClass(CLASSALLOC_MAX_CLASSES, 8) == NULL);
    Free(NULL, 8);
    /* count * size is checked, as C's calloc checks it. */
    CHECK(CallocArray(SIZE_MAX / 2 + 1, 2) == NULL);
    CHECK(CallocArray(2, SIZE_MAX) == NULL);
    CHECK(CallocArray((size_t)1 << 32, (size_t)1 << 32) == NULL);
    CHECK(CallocArrayClass(2, SIZE_MAX, SIZE_MAX) == NULL);
    CHECK(CallocArray(0, 8) == NULL && CallocArray(8, 0) == NULL);
    unsigned long long *array = CallocArray(1000, sizeof *array);
    CHECK(array != NULL && array[0] == 0 && array[999] == 0);
    /* A resize to 0 or to an impossible size fails and keeps the allocation. */
    array[999] = 42;
    CHECK(Remalloc(array, 1000 * sizeof *array, 0) == NULL);
    CHECK(Recalloc(array, 1000 * sizeof *array, SIZE_MAX) == NULL);
    CHECK(array[999] == 42);
    Free(array, 1000 * sizeof *array);

    /* Classes: a burst of short-lived objects in class 3, released at once; class 1 keeps its data. */
    unsigned char *keep[100];
    for (int i = 0; i < 100; i++) {
        keep[i] = MallocClass(1, 64);
        CHECK(keep[i] != NULL);
        memset(keep[i], i, 64);
    }
    for (int i = 0; i < 200000; i++) {
        unsigned char *tmp = MallocClass(3, 48);
        CHECK(tmp != NULL);
        tmp[0] = 1;
    }
    CHECK(ClassLiveBytes(3) == 200000u * 48u);
    CHECK(ClassResidentBytes(3) >= 200000u * 48u);
    ReleaseClass(3);
    CHECK(ClassLiveBytes(3) == 0 && ClassResidentBytes(3) == 0);
    for (int i = 0; i < 100; i++) {
        CHECK(keep[i][0] == i && keep[i][63] == i);
        FreeClass(1, keep[i], 64);
    }
    CHECK(ClassLiveBytes(1) == 0);
    printf("ok\n");
    return 0;
}
