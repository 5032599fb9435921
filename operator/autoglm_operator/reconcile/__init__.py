"""The only Kubernetes I/O: the converge path, server-side apply, diff and prune, discovery,
and the watch-fed copy of the children."""
