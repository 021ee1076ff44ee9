#ifndef HEAPGATE_CLIBDW_SHIM_H
#define HEAPGATE_CLIBDW_SHIM_H
#include <elfutils/libdwfl.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <dwarf.h>
#include <gelf.h>
#endif
