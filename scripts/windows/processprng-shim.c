/*
 * bcryptprimitives.dll for wine 8.0, which lacks ProcessPrng: Rust's std (1.78 and newer)
 * calls bcryptprimitives!ProcessPrng for random bytes (HashMap seeds, tempfile names).
 * This DLL, placed beside the .exe under wine, provides it through advapi32's
 * SystemFunction036 (RtlGenRandom), which wine has. Built by scripts/windows-check.sh with
 * mingw-w64; used only for tests under wine, never shipped: real Windows 10 and newer has
 * ProcessPrng.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
