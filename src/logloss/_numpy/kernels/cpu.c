/* Which kernel paths this x86-64 CPU runs. Compiled without any -m flag, so that it is safe to
 * import on every x86-64 CPU, before any path module (each compiled for its instruction set) is. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *cpu_supports(PyObject *self, PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    int yes = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    int v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
    int v3 = v2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(name, "baseline")) yes = v2;
    else if (!strcmp(name, "avx2")) yes = v3;
    else if (!strcmp(name, "avx512")) yes = v3 && __builtin_cpu_supports("avx512f")
                                             && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
    return PyBool_FromLong(yes);
}

static PyMethodDef methods[] = {
    {"cpu_supports", cpu_supports, METH_O, "Whether this CPU runs a kernel path: 'baseline', 'avx2', 'avx512'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_cpu", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__cpu(void) { return PyModule_Create(&module); }
