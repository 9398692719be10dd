// File operations the journal needs and SQLite does not give: file sizes and
// moving a corrupt file aside (free space and FileExists: platform/files.h).
//
// store/ may not include OS file headers (only platform/ touches the OS), so
// these few calls live here. All are thread-safe (plain syscalls) and are
// called from the store thread.
#pragma once

#include <cstdint>
#include <string>

#include "platform/status.h"

namespace edgespool::platform {

// Size of a regular file; kNotFound when it does not exist.
Result<uint64_t> FileSizeBytes(const std::string& path);
// rename(2); fails (never copies) across filesystems.
Status RenameFile(const std::string& from, const std::string& to);
// unlink(2); OK when the file did not exist.
Status RemoveFile(const std::string& path);
// fsync(2) of a directory: a rename or unlink in it is durable after this.
Status SyncDirectory(const std::string& dir);
// The directory part of a path ("." when there is none).
std::string DirName(const std::string& path);

}  // namespace edgespool::platform
