// lowbit's version (CMakeLists.txt's project(VERSION) must agree: the consumer test checks
// the installed programs' --version against it). Its own header so that the tools can print
// it without the umbrella.
#pragma once

#define LOWBIT_VERSION_MAJOR 0
#define LOWBIT_VERSION_MINOR 1
#define LOWBIT_VERSION_PATCH 0
