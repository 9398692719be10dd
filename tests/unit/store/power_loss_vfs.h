// PowerLossVfs: a test SQLite VFS that models a disk losing power.
//
// It sits in front of a real VFS (for the journal, kJournalVfs: "unix-excl"),
// passes every call through, and remembers per file what the disk has made
// durable: the file's content as of its last xSync, and the writes and
// truncations made since, in order. Directory entries are modelled too: a
// file created (xOpen with CREATE) or removed (xDelete) changes the
// directory, and the change is durable only once the directory is synced.
// SQLite's unix VFS syncs the directory on the first xSync of a WAL or
// rollback journal it opened with CREATE, and in xDelete(dirSync = 1)
// (measured with strace on Debian's 3.40: open(dir) + fdatasync(dir) right
// after the new -wal's first fdatasync); it never syncs it for the main
// database file, whose entry becomes durable with the WAL's first sync.
//
// The power goes at a chosen point: CutAfter(n), before the n-th mutating
// call from now (a write, truncation, sync, file creation or delete, on any
// thread), or CutNow(). From then on every mutating call fails with
// SQLITE_IOERR_*, as if the process had died with the machine: nothing more
// reaches the disk, and no commit can succeed (so no ack can be given) after
// the cut. Reads still see what was written: they are the page cache of a
// process that is, as far as the disk is concerned, already dead. Once every
// file is closed, Reboot() decides what the disk kept, following a CutModel,
// writes exactly that to the real files, and records again from there.
//
// The disk model, per file (a disk reorders writes between flushes, and
// files are independent):
//   kDropAll     nothing unsynced survives: every write and truncation since
//                the file's last sync, and every directory change since the
//                directory's last sync, is lost.
//   kKeepPrefix  a random prefix of the unsynced operations reached the
//                platter; with `torn`, the first lost write may be torn.
//   kKeepSubset  each unsynced operation reached it or not, independently;
//                with `torn`, some are torn.
//   A torn write is cut at 512-byte sector boundaries: each sector of it
//   holds the new bytes, the old ones, or (with `garbage`) random bytes.
//   Bytes outside the written range are never touched: the unix VFS declares
//   SQLITE_IOCAP_POWERSAFE_OVERWRITE, and SQLite's WAL relies on it (it does
//   not pad a commit to a sector boundary when it is set).
//   An unsynced directory change (a new file, a removal) is undone under
//   kDropAll and with probability 1/2 otherwise: the new file vanishes, or
//   the removed one is back with the content it last had durably.
//
// Not modelled: the WAL index (-shm: unix-excl keeps it in heap memory, and
// SQLite rebuilds it from the WAL after a crash; Reboot removes any -shm
// file), files SQLite opens without a name (temp files: passed through),
// and renames (SQLite's VFS never renames). The real disk's own fsync is
// not called: the model decides what is durable, and a real sync only costs
// time. Code outside SQLite that touches the directory after the cut (the
// journal moving a file it could not open aside) is undone by Reboot: a
// dead machine would not have run it.
//
// Installation: Install(kJournalVfs, kJournalVfs) registers the shim under
// the name of the VFS it wraps; sqlite3_vfs_find() returns the first VFS of
// a name, and a VFS registered as non-default goes right after the default
// one, so every journal connection gets the shim while it is installed. The
// destructor unregisters it and the real VFS is found again. No production
// code knows about it.
//
// Thread-safety: SQLite calls it from the store and checkpointer threads.
// One mutex guards the model and is held across each mutating call, so a
// call happens wholly before or wholly after the cut.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace edgespool::store::powerloss {

enum class Loss { kDropAll, kKeepPrefix, kKeepSubset };

struct CutModel {
  Loss loss = Loss::kDropAll;
  bool torn = false;     // unsynced writes may be torn at sector boundaries
  bool garbage = false;  // a torn sector may hold random bytes
};

// What a Reboot found unsynced and what it kept, summed over files.
struct RebootReport {
  uint64_t unsynced_ops = 0;  // writes and truncations not synced at the cut
  uint64_t kept_ops = 0;      // ... of which reached the platter whole
  uint64_t torn_writes = 0;   // ... or in part
  uint64_t dir_changes = 0;   // unsynced creations and removals at the cut
  uint64_t dir_reverted = 0;  // ... undone
  uint64_t files = 0;         // files on the disk after the reboot
};

class PowerLossVfs {
 public:
  // Registers the shim as `name` over the VFS called `base_name` (the same
  // name shadows it). nullptr if base_name is not registered.
  static std::unique_ptr<PowerLossVfs> Install(const std::string& name,
                                               const std::string& base_name) {
    sqlite3_initialize();
    sqlite3_vfs* base = sqlite3_vfs_find(base_name.c_str());
    if (!base) return nullptr;
    std::unique_ptr<PowerLossVfs> v(new PowerLossVfs(name, base));
    if (sqlite3_vfs_register(&v->vfs_, 0) != SQLITE_OK) return nullptr;
    return v;
  }
  ~PowerLossVfs() { sqlite3_vfs_unregister(&vfs_); }
  PowerLossVfs(const PowerLossVfs&) = delete;
  PowerLossVfs& operator=(const PowerLossVfs&) = delete;

  // The power goes before the n-th mutating call from now (n >= 1).
  void CutAfter(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
    cut_at_ = calls_ + std::max<uint64_t>(n, 1);
  }
  void CutNow() {
    std::lock_guard<std::mutex> lock(mu_);
    Cut("between calls");
  }
  bool cut() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cut_;
  }
  // The call the power went before ("write wal", "sync db", "create wal",
  // "between calls" for CutNow).
  std::string cut_call() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cut_call_;
  }

  // Cuts the power if it is still on, decides what survived (see the top of
  // the file), writes it to the real files, and starts recording again with
  // that as the durable state. Every file must be closed (the journal
  // destroyed). False, with *error, when it cannot.
  bool Reboot(const CutModel& model, std::mt19937& rng, RebootReport* report, std::string* error) {
    std::lock_guard<std::mutex> lock(mu_);
    Cut("between calls");
    if (open_ != 0) {
      *error = std::to_string(open_) + " files still open";
      return false;
    }
    for (auto& [dir_path, dir] : dirs_) {
      if (!RemoveFilesMadeAfterTheCut(dir_path, dir, error)) return false;
      std::set<std::string> names;
      for (const auto& e : dir.now) names.insert(e.first);
      for (const auto& e : dir.durable) names.insert(e.first);
      std::set<const Inode*> inodes;
      for (const std::string& path : names) {
        for (const Inode* i : {Lookup(dir.now, path).get(), Lookup(dir.durable, path).get()}) {
          if (i && inodes.insert(i).second) report->unsynced_ops += i->unsynced.size();
        }
      }
      Entries survivors;
      for (const std::string& path : names) {
        if (!RebootEntry(dir, path, model, rng, report, &survivors, error)) return false;
      }
      dir.now = survivors;
      dir.durable = std::move(survivors);
    }
    cut_ = false;
    armed_ = false;
    return true;
  }

 private:
  // An unsynced write, or a truncation (offset: the new size).
  struct Op {
    bool truncate = false;
    int64_t offset = 0;
    std::string data;
  };
  struct Inode {
    std::string durable;  // the content as of the last sync
    std::vector<Op> unsynced;
    bool main_db = false;
    const char* kind = "other";  // KindOf the open flags
  };
  using Entries = std::map<std::string, std::shared_ptr<Inode>>;
  struct Dir {
    Entries now;                   // what the directory holds now
    Entries durable;               // what it held at its last sync
    std::set<std::string> at_cut;  // every name in it when the power went
  };
  struct Handle {
    PowerLossVfs* owner = nullptr;
    std::shared_ptr<Inode> inode;  // null: not modelled (a temp file)
    std::string dir;
    bool dirsync = false;  // the unix VFS syncs the directory on the first xSync
  };
  // SQLite allocates szOsFile bytes per open file: this header, then the
  // wrapped VFS's own file object.
  struct File {
    sqlite3_file base;
    Handle* handle;
  };
  static constexpr size_t kHeader = (sizeof(File) + 15) & ~size_t{15};
  static constexpr int64_t kSector = 512;

  PowerLossVfs(const std::string& name, sqlite3_vfs* base) : name_(name), base_(base) {
    vfs_.iVersion = 2;
    vfs_.szOsFile = static_cast<int>(kHeader) + base->szOsFile;
    vfs_.mxPathname = base->mxPathname;
    vfs_.zName = name_.c_str();
    vfs_.pAppData = this;
    vfs_.xOpen = &XOpen;
    vfs_.xDelete = &XDelete;
    vfs_.xAccess = [](sqlite3_vfs* v, const char* n, int f, int* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xAccess(b, n, f, out);
    };
    vfs_.xFullPathname = [](sqlite3_vfs* v, const char* n, int size, char* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xFullPathname(b, n, size, out);
    };
    vfs_.xDlOpen = [](sqlite3_vfs* v, const char* n) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xDlOpen(b, n);
    };
    vfs_.xDlError = [](sqlite3_vfs* v, int n, char* out) {
      sqlite3_vfs* b = Self(v)->base_;
      b->xDlError(b, n, out);
    };
    vfs_.xDlSym = [](sqlite3_vfs* v, void* h, const char* s) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xDlSym(b, h, s);
    };
    vfs_.xDlClose = [](sqlite3_vfs* v, void* h) {
      sqlite3_vfs* b = Self(v)->base_;
      b->xDlClose(b, h);
    };
    vfs_.xRandomness = [](sqlite3_vfs* v, int n, char* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xRandomness(b, n, out);
    };
    vfs_.xSleep = [](sqlite3_vfs* v, int us) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xSleep(b, us);
    };
    vfs_.xCurrentTime = [](sqlite3_vfs* v, double* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xCurrentTime(b, out);
    };
    vfs_.xGetLastError = [](sqlite3_vfs* v, int n, char* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xGetLastError(b, n, out);
    };
    vfs_.xCurrentTimeInt64 = [](sqlite3_vfs* v, sqlite3_int64* out) {
      sqlite3_vfs* b = Self(v)->base_;
      return b->xCurrentTimeInt64(b, out);
    };

    methods_.iVersion = 3;
    methods_.xClose = &XClose;
    methods_.xRead = [](sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xRead(r, buf, n, off);
    };
    methods_.xWrite = &XWrite;
    methods_.xTruncate = &XTruncate;
    methods_.xSync = &XSync;
    methods_.xFileSize = [](sqlite3_file* f, sqlite3_int64* out) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xFileSize(r, out);
    };
    methods_.xLock = [](sqlite3_file* f, int l) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xLock(r, l);
    };
    methods_.xUnlock = [](sqlite3_file* f, int l) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xUnlock(r, l);
    };
    methods_.xCheckReservedLock = [](sqlite3_file* f, int* out) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xCheckReservedLock(r, out);
    };
    methods_.xFileControl = &XFileControl;
    methods_.xSectorSize = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xSectorSize(r);
    };
    methods_.xDeviceCharacteristics = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xDeviceCharacteristics(r);
    };
    methods_.xShmMap = [](sqlite3_file* f, int pg, int size, int extend, void volatile** out) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xShmMap(r, pg, size, extend, out);
    };
    methods_.xShmLock = [](sqlite3_file* f, int off, int n, int flags) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xShmLock(r, off, n, flags);
    };
    methods_.xShmBarrier = [](sqlite3_file* f) {
      sqlite3_file* r = Real(f);
      r->pMethods->xShmBarrier(r);
    };
    methods_.xShmUnmap = [](sqlite3_file* f, int del) {
      sqlite3_file* r = Real(f);
      return r->pMethods->xShmUnmap(r, del);
    };
    // Memory-mapped reads see the real file, as xRead does; SQLite never
    // writes through the map (no SQLITE_MMAP_READWRITE in Debian's build).
    methods_.xFetch = [](sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
      sqlite3_file* r = Real(f);
      if (r->pMethods->iVersion < 3) {
        *out = nullptr;
        return SQLITE_OK;
      }
      return r->pMethods->xFetch(r, off, n, out);
    };
    methods_.xUnfetch = [](sqlite3_file* f, sqlite3_int64 off, void* p) {
      sqlite3_file* r = Real(f);
      if (r->pMethods->iVersion < 3) return SQLITE_OK;
      return r->pMethods->xUnfetch(r, off, p);
    };
  }

  static PowerLossVfs* Self(sqlite3_vfs* v) { return static_cast<PowerLossVfs*>(v->pAppData); }
  static Handle* HandleOf(sqlite3_file* f) { return reinterpret_cast<File*>(f)->handle; }
  static sqlite3_file* Real(sqlite3_file* f) {
    return reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kHeader);
  }
  // A dead machine runs nothing: a file that appeared after the cut came
  // from code outside SQLite (Journal::Open moving a file it could not open
  // aside, with the power already gone) and is not on the disk.
  static bool RemoveFilesMadeAfterTheCut(const std::string& dir_path, const Dir& dir,
                                         std::string* error) {
    for (const std::string& path : ListDir(dir_path)) {
      if (!dir.at_cut.count(path) && !Lookup(dir.now, path) && unlink(path.c_str()) != 0) {
        *error = "unlink " + path + ": " + strerror(errno);
        return false;
      }
    }
    return true;
  }

  // Decides what `path` holds after the reboot, writes it, and adds it to
  // *survivors (unless the file is gone).
  static bool RebootEntry(const Dir& dir, const std::string& path, const CutModel& model,
                          std::mt19937& rng, RebootReport* report, Entries* survivors,
                          std::string* error) {
    std::shared_ptr<Inode> now = Lookup(dir.now, path);
    std::shared_ptr<Inode> durable = Lookup(dir.durable, path);
    std::shared_ptr<Inode> chosen = now;
    if (now != durable) {
      ++report->dir_changes;
      if (model.loss == Loss::kDropAll || rng() % 2 == 0) {
        chosen = durable;
        ++report->dir_reverted;
      }
    }
    if ((now && now->main_db) || (durable && durable->main_db)) unlink((path + "-shm").c_str());
    if (!chosen) {
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        *error = "unlink " + path + ": " + strerror(errno);
        return false;
      }
      return true;
    }
    auto survivor = std::make_shared<Inode>();
    survivor->durable = Survive(*chosen, model, rng, report);
    survivor->main_db = chosen->main_db;
    survivor->kind = chosen->kind;
    // Nothing unsynced and still in place: the real file already holds
    // exactly the durable content (unless it was moved after the cut).
    struct stat st;
    bool unchanged = chosen == now && chosen->unsynced.empty() && stat(path.c_str(), &st) == 0 &&
                     static_cast<size_t>(st.st_size) == survivor->durable.size();
    if (!unchanged && !WriteWhole(path, survivor->durable, error)) return false;
    (*survivors)[path] = std::move(survivor);
    ++report->files;
    return true;
  }

  static std::string DirOf(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
  }
  static std::shared_ptr<Inode> Lookup(const Entries& entries, const std::string& path) {
    auto it = entries.find(path);
    return it == entries.end() ? nullptr : it->second;
  }

  // Called with mu_ held before every mutating call: false once the power
  // is gone (the call must fail and change nothing).
  bool PowerOn(const char* call, const char* kind) {
    if (cut_) return false;
    ++calls_;
    if (armed_ && calls_ >= cut_at_) {
      Cut(std::string(call) + " " + kind);
      return false;
    }
    return true;
  }
  // With mu_ held. The directories are listed as the power goes: a file
  // that appears later came from code outside SQLite (the journal moving a
  // file it could not open aside), which a dead machine never ran.
  void Cut(std::string call) {
    if (cut_) return;
    cut_ = true;
    cut_call_ = std::move(call);
    for (auto& [path, dir] : dirs_) dir.at_cut = ListDir(path);
  }
  static std::set<std::string> ListDir(const std::string& path) {
    std::set<std::string> names;
    if (DIR* d = opendir(path.c_str())) {
      while (dirent* e = readdir(d)) names.insert(path + "/" + e->d_name);
      closedir(d);
    }
    return names;
  }
  static const char* KindOf(int flags) {
    if (flags & SQLITE_OPEN_MAIN_DB) return "db";
    if (flags & SQLITE_OPEN_WAL) return "wal";
    if (flags & SQLITE_OPEN_MAIN_JOURNAL) return "journal";
    return "other";
  }

  static bool ReadWhole(const std::string& path, std::string* out) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    out->clear();
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
    close(fd);
    return n == 0;
  }
  static bool WriteWhole(const std::string& path, const std::string& data, std::string* error) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    size_t done = 0;
    while (ok && done < data.size()) {
      ssize_t n = write(fd, data.data() + done, data.size() - done);
      ok = n > 0;
      if (ok) done += static_cast<size_t>(n);
    }
    if (fd >= 0) close(fd);
    if (!ok) *error = "write " + path + ": " + strerror(errno);
    return ok;
  }

  // A file the model has not seen yet but the disk holds: durable as it is.
  std::shared_ptr<Inode> Adopt(Dir& dir, const std::string& path) {
    auto inode = std::make_shared<Inode>();
    (void)ReadWhole(path, &inode->durable);
    dir.now[path] = inode;
    dir.durable[path] = inode;
    return inode;
  }

  static void Apply(std::string* image, const Op& op) {
    if (op.truncate) {
      image->resize(static_cast<size_t>(op.offset));
      return;
    }
    size_t end = static_cast<size_t>(op.offset) + op.data.size();
    if (image->size() < end) image->resize(end);
    image->replace(static_cast<size_t>(op.offset), op.data.size(), op.data);
  }

  // Part of a write: sector by sector, new bytes, old bytes or garbage.
  static void ApplyTorn(std::string* image, const Op& op, bool garbage, std::mt19937& rng) {
    int64_t end = op.offset + static_cast<int64_t>(op.data.size());
    for (int64_t s = op.offset / kSector * kSector; s < end; s += kSector) {
      int64_t lo = std::max(s, op.offset), hi = std::min(s + kSector, end);
      Op piece;
      piece.offset = lo;
      switch (rng() % (garbage ? 3 : 2)) {
        case 0:
          piece.data =
              op.data.substr(static_cast<size_t>(lo - op.offset), static_cast<size_t>(hi - lo));
          break;
        case 1:
          continue;  // the old bytes stay
        default:
          for (int64_t i = lo; i < hi; ++i) piece.data += static_cast<char>(rng());
      }
      Apply(image, piece);
    }
  }

  static std::string Survive(const Inode& inode, const CutModel& model, std::mt19937& rng,
                             RebootReport* report) {
    std::string image = inode.durable;
    const std::vector<Op>& ops = inode.unsynced;
    if (model.loss == Loss::kKeepPrefix) {
      size_t keep = rng() % (ops.size() + 1);
      for (size_t i = 0; i < keep; ++i) Apply(&image, ops[i]);
      report->kept_ops += keep;
      if (model.torn && keep < ops.size() && !ops[keep].truncate && rng() % 2 == 0) {
        ApplyTorn(&image, ops[keep], model.garbage, rng);
        ++report->torn_writes;
      }
    } else if (model.loss == Loss::kKeepSubset) {
      for (const Op& op : ops) {
        uint32_t r = rng() % 4;
        if (r < 2) {
          Apply(&image, op);
          ++report->kept_ops;
        } else if (r == 3 && model.torn && !op.truncate) {
          ApplyTorn(&image, op, model.garbage, rng);
          ++report->torn_writes;
        }
      }
    }
    return image;
  }

  static int XOpen(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags,
                   int* out_flags) noexcept {
    PowerLossVfs* self = Self(v);
    f->pMethods = nullptr;
    sqlite3_file* real = Real(f);
    auto handle = std::make_unique<Handle>();
    handle->owner = self;
    if (!name || (flags & SQLITE_OPEN_DELETEONCLOSE)) {
      int rc = self->base_->xOpen(self->base_, name, real, flags, out_flags);
      if (rc != SQLITE_OK) return rc;
    } else {
      std::lock_guard<std::mutex> lock(self->mu_);
      std::string path = name;
      struct stat st;
      bool exists = stat(path.c_str(), &st) == 0;
      bool creating = (flags & SQLITE_OPEN_CREATE) && !exists;
      if (self->cut_ || (creating && !self->PowerOn("create", KindOf(flags))))
        return SQLITE_CANTOPEN;
      int rc = self->base_->xOpen(self->base_, name, real, flags, out_flags);
      if (rc != SQLITE_OK) return rc;
      handle->dir = DirOf(path);
      Dir& dir = self->dirs_[handle->dir];
      handle->inode = Lookup(dir.now, path);
      if (!handle->inode) {
        if (creating) {
          handle->inode = std::make_shared<Inode>();
          dir.now[path] = handle->inode;
        } else {
          handle->inode = self->Adopt(dir, path);
        }
      }
      if (flags & SQLITE_OPEN_MAIN_DB) handle->inode->main_db = true;
      handle->inode->kind = KindOf(flags);
      handle->dirsync =
          (flags & SQLITE_OPEN_CREATE) &&
          (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL));
      ++self->open_;
    }
    reinterpret_cast<File*>(f)->handle = handle.release();
    f->pMethods = &self->methods_;
    return SQLITE_OK;
  }

  static int XDelete(sqlite3_vfs* v, const char* name, int dir_sync) noexcept {
    PowerLossVfs* self = Self(v);
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->PowerOn("delete", "file")) return SQLITE_IOERR_DELETE;
    std::string path = name;
    Dir& dir = self->dirs_[DirOf(path)];
    // A file the model never saw must be known before it goes, so that an
    // undone removal can bring it back.
    if (!Lookup(dir.now, path) && access(path.c_str(), F_OK) == 0) self->Adopt(dir, path);
    int rc = self->base_->xDelete(self->base_, name, dir_sync);
    if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT) {
      dir.now.erase(path);
      if (dir_sync) dir.durable = dir.now;
    }
    return rc;
  }

  static int XClose(sqlite3_file* f) noexcept {
    Handle* h = HandleOf(f);
    sqlite3_file* real = Real(f);
    int rc = real->pMethods ? real->pMethods->xClose(real) : SQLITE_OK;
    if (h->inode) {
      std::lock_guard<std::mutex> lock(h->owner->mu_);
      --h->owner->open_;
    }
    delete h;
    return rc;
  }

  static int XWrite(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) noexcept {
    Handle* h = HandleOf(f);
    sqlite3_file* real = Real(f);
    if (!h->inode) return real->pMethods->xWrite(real, buf, n, off);
    std::lock_guard<std::mutex> lock(h->owner->mu_);
    if (!h->owner->PowerOn("write", h->inode->kind)) return SQLITE_IOERR_WRITE;
    int rc = real->pMethods->xWrite(real, buf, n, off);
    if (rc == SQLITE_OK) {
      Op op;
      op.offset = off;
      op.data.assign(static_cast<const char*>(buf), static_cast<size_t>(n));
      h->inode->unsynced.push_back(std::move(op));
    }
    return rc;
  }

  static int XTruncate(sqlite3_file* f, sqlite3_int64 size) noexcept {
    Handle* h = HandleOf(f);
    sqlite3_file* real = Real(f);
    if (!h->inode) return real->pMethods->xTruncate(real, size);
    std::lock_guard<std::mutex> lock(h->owner->mu_);
    if (!h->owner->PowerOn("truncate", h->inode->kind)) return SQLITE_IOERR_TRUNCATE;
    int rc = real->pMethods->xTruncate(real, size);
    if (rc == SQLITE_OK) {
      Op op;
      op.truncate = true;
      op.offset = size;
      h->inode->unsynced.push_back(std::move(op));
    }
    return rc;
  }

  static int XSync(sqlite3_file* f, int flags) noexcept {
    Handle* h = HandleOf(f);
    sqlite3_file* real = Real(f);
    if (!h->inode) return real->pMethods->xSync(real, flags);
    PowerLossVfs* self = h->owner;
    std::lock_guard<std::mutex> lock(self->mu_);
    if (!self->PowerOn("sync", h->inode->kind)) return SQLITE_IOERR_FSYNC;
    // The model decides what is durable; the real disk's own sync would
    // only cost time (a few ms each on a shared machine).
    for (const Op& op : h->inode->unsynced) Apply(&h->inode->durable, op);
    h->inode->unsynced.clear();
    if (h->dirsync) {
      Dir& dir = self->dirs_[h->dir];
      dir.durable = dir.now;
      h->dirsync = false;
    }
    return SQLITE_OK;
  }

  // SQLITE_FCNTL_SIZE_HINT may grow the file without an xWrite (the unix
  // VFS does so only with a chunk size set; the journal sets none): a
  // growth is recorded as an unsynced truncation upwards.
  static int XFileControl(sqlite3_file* f, int op, void* arg) noexcept {
    Handle* h = HandleOf(f);
    sqlite3_file* real = Real(f);
    if (op != SQLITE_FCNTL_SIZE_HINT || !h->inode)
      return real->pMethods->xFileControl(real, op, arg);
    std::lock_guard<std::mutex> lock(h->owner->mu_);
    if (!h->owner->PowerOn("grow", h->inode->kind)) return SQLITE_IOERR_TRUNCATE;
    sqlite3_int64 before = 0, after = 0;
    (void)real->pMethods->xFileSize(real, &before);
    int rc = real->pMethods->xFileControl(real, op, arg);
    (void)real->pMethods->xFileSize(real, &after);
    if (after > before) {
      Op grow;
      grow.truncate = true;
      grow.offset = after;
      h->inode->unsynced.push_back(std::move(grow));
    }
    return rc;
  }

  const std::string name_;
  sqlite3_vfs* const base_;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};

  mutable std::mutex mu_;
  std::map<std::string, Dir> dirs_;
  size_t open_ = 0;
  uint64_t calls_ = 0;
  bool armed_ = false;
  uint64_t cut_at_ = 0;
  bool cut_ = false;
  std::string cut_call_;
};

}  // namespace edgespool::store::powerloss
