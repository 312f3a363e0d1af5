"""The programs that run inside the sandbox, in their own interpreters (never imported by evalkit's
process except by tests): the zygote and its containment, the untrusted side that runs the model's
code, the judge that runs the tests, and the plain-data channel between the two.

These modules import only the standard library and each other (relatively): the zygote is started
as `python -I -S -B` with only this package's parent on `sys.path`.
"""
