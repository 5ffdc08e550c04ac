//! classalloc's benchmark suite: workloads run against classalloc and its peers.
