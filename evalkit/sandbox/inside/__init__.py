"""The programs that run inside the sandbox, in their own interpreters: the zygote and its
containment, the untrusted side that runs the model's code, the judge that runs the tests, and the
plain-data channel between the two. evalkit's own process imports only `prefetch` and `plain`, to
analyse a test for the judge while the sample waits for a worker (and the tests import the rest).

These modules import only the standard library and each other (relatively): the zygote is started
as `python -I -S -B` with only this package's parent on `sys.path`.
"""
