/* classalloc: a size-class slab allocator with no per-allocation metadata, and lifetime classes.
 *
 * Link with libclassalloc_c.a (and -lpthread -ldl -lm) or libclassalloc_c.so.
 *
 * Contract (from the seed design): the caller passes the allocation's size back to Free, Remalloc and
 * Recalloc. An allocation of n bytes is aligned to n rounded up to a power of two (at most 4096; larger
 * allocations are page-aligned). Errors are NULL. A free that does not match an allocation (size 0, a
 * pointer that is not an allocated slot of that size, a double free the allocator can see, another class)
 * aborts with "classalloc: fatal: ..." on standard error.
 *
 * Remalloc and Recalloc return NULL on failure and leave the old allocation as it was; a new size of 0
 * is a failure too (NULL, the allocation stays: free it with Free), not a free as realloc(p, 0) may be.
 */
#ifndef CLASSALLOC_H
#define CLASSALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Lifetime classes are 0 .. CLASSALLOC_MAX_CLASSES - 1; the class-less functions use class 0. */
#define CLASSALLOC_MAX_CLASSES 16

void *Malloc(size_t size);
void *Calloc(size_t size);
void Free(void *ptr, size_t size);
void *Remalloc(void *ptr, size_t old_size, size_t new_size);
void *Recalloc(void *ptr, size_t old_size, size_t new_size);
/* Calloc(count * size), checking the product as C's calloc does: NULL when it overflows. Free it with
 * Free(ptr, count * size). */
void *CallocArray(size_t count, size_t size);

void *MallocClass(unsigned cls, size_t size);
void *CallocClass(unsigned cls, size_t size);
void FreeClass(unsigned cls, void *ptr, size_t size);
void *RemallocClass(unsigned cls, void *ptr, size_t old_size, size_t new_size);
void *RecallocClass(unsigned cls, void *ptr, size_t old_size, size_t new_size);
void *CallocArrayClass(unsigned cls, size_t count, size_t size);

/* Returns every block of the class to the OS at once; nothing allocated in it may be used afterwards,
 * and no other thread may use the class during the call. Out-of-range classes are ignored. */
void ReleaseClass(unsigned cls);

/* Live bytes (as requested) and resident bytes of a class; 0 for out-of-range classes. */
size_t ClassLiveBytes(unsigned cls);
size_t ClassResidentBytes(unsigned cls);

#ifdef __cplusplus
}
#endif

#endif /* CLASSALLOC_H */
