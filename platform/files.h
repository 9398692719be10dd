// Small file-system and identity helpers, so that nothing outside platform/
// touches POSIX file or user-database headers.
#pragma once

#include <cstdint>
#include <string>

#include "platform/status.h"

namespace edgespool::platform {

Result<std::string> ReadWholeFile(const std::string& path);
// Writes to path.tmp, fsyncs and renames over path.
Status WriteFileAtomic(const std::string& path, const std::string& content);
// Empty Status if the file can be opened for reading; else why not.
Status CheckReadable(const std::string& path);
bool FileExists(const std::string& path);
Status MakeDirectories(const std::string& dir, unsigned mode = 0755);
// Bytes available to unprivileged users on the file system holding path.
Result<uint64_t> FreeDiskBytes(const std::string& path);
std::string HostName();
// uid/gid of a user or group name.
Result<int64_t> LookupUid(const std::string& user);
Result<int64_t> LookupGid(const std::string& group);

}  // namespace edgespool::platform
