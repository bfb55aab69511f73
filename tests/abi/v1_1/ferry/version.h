/*
 * Ferry SDK version numbers, as comparable integers.
 *
 * FERRY_ABI_MAJOR/MINOR describe the binary contract in ferry.h. A plugin
 * records the numbers it was compiled with and the host compares them at load
 * time (see sdk/ABI.md, R1-R4). FERRY_SDK_VERSION tracks the SDK package
 * (headers, C++ wrapper, CMake files) and may move without an ABI change.
 */
#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

/* The type of every version number above, e.g. for storing FERRY_SDK_VERSION. */
typedef unsigned int ferry_version_number;

#define FERRY_ABI_MAJOR 1
#define FERRY_ABI_MINOR 1

#define FERRY_SDK_VERSION_MAJOR 0
#define FERRY_SDK_VERSION_MINOR 1
#define FERRY_SDK_VERSION_PATCH 0

/* 0xMMmmpp: compare with the usual integer operators. */
#define FERRY_MAKE_VERSION(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define FERRY_SDK_VERSION \
  FERRY_MAKE_VERSION(FERRY_SDK_VERSION_MAJOR, FERRY_SDK_VERSION_MINOR, FERRY_SDK_VERSION_PATCH)
#define FERRY_SDK_VERSION_STRING "0.1.0"

#endif /* FERRY_VERSION_H */
