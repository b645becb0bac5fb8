// lowbit — header-only C++17 tensor + reverse-mode autograd engine for low-bit networks.
// Umbrella header: include this one file to get everything public.
#pragma once

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0
