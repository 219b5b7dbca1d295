package sshd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/pkg/sftp"

	"github.com/rosti-paas/rosti/sshd/sandbox"
)

// sftpMaxPacket lets clients that ask for larger reads get them in one reply.
const sftpMaxPacket = 256 * 1024

func (s *Server) handleSFTP(sess ssh.Session) {
	access, ok := accessOf(sess.Context())
	if !ok {
		sess.Exit(exitInternal)
		return
	}
	root, err := os.OpenRoot(access.VolumeDir)
	if err != nil {
		s.log.Error("sftp: open volume", "app", access.AppName, "err", err)
		fmt.Fprintf(sess.Stderr(), "rosti: cannot open the volume of app %s\n", access.AppName)
		sess.Exit(exitInternal)
		return
	}
	defer root.Close()
	volume := &volumeFS{root: root, uid: int(access.UID), gid: int(access.GID)}
	handlers := sftp.Handlers{FileGet: volume, FilePut: volume, FileCmd: volume, FileList: volume}
	server := sftp.NewRequestServer(keepOpen{sess}, handlers,
		sftp.WithStartDirectory(sandbox.VolumePath),
		sftp.WithRSMaxTxPacket(sftpMaxPacket),
	)
	err = server.Serve()
	server.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		s.log.Warn("sftp ended", "app", access.AppName, "err", err)
		sess.Exit(1)
		return
	}
	// scp in SFTP mode fails unless the subsystem reports success.
	sess.Exit(0)
}

// keepOpen leaves closing the channel to sess.Exit, which must come first
// to deliver the exit status.
type keepOpen struct{ io.ReadWriter }

func (keepOpen) Close() error { return nil }

// volumeFS serves SFTP requests on one app volume. Clients see the volume at
// /srv, as in the app's containers; every path is resolved through root, so
// "..", absolute symlinks and symlinks leading out of the volume fail. The
// gateway runs as root, so what it creates is chowned to the app's uid/gid
// through the open file or the root, never by a path that could be swapped.
type volumeFS struct {
	root     *os.Root
	uid, gid int

	mu      sync.Mutex
	uploads map[string]*upload // by final name (upload.go)
}

// volumePath maps a client path (absolute, cleaned by the request server) to
// a path relative to the volume root.
func volumePath(clientPath string) (string, error) {
	switch {
	case clientPath == sandbox.VolumePath:
		return ".", nil
	case strings.HasPrefix(clientPath, sandbox.VolumePath+"/"):
		return strings.TrimPrefix(clientPath, sandbox.VolumePath+"/"), nil
	}
	return "", fmt.Errorf("%s is outside the app volume %s: %w", clientPath, sandbox.VolumePath, sftp.ErrSSHFxPermissionDenied)
}

func (v *volumeFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	name, err := volumePath(r.Filepath)
	if err != nil {
		return nil, err
	}
	return v.root.Open(name)
}

func (v *volumeFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return v.openForWrite(r, os.O_WRONLY)
}

func (v *volumeFS) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return v.openForWrite(r, os.O_RDWR)
}

// openForWrite sends files written from scratch through a temporary
// (upload.go) and opens the others in place.
func (v *volumeFS) openForWrite(r *sftp.Request, access int) (sftp.WriterAtReaderAt, error) {
	name, err := volumePath(r.Filepath)
	if err != nil {
		return nil, err
	}
	flags := r.Pflags()
	existing, statErr := v.root.Lstat(name)
	var (
		u *upload
		f *os.File
	)
	switch {
	case statErr == nil && existing.Mode().IsRegular() && flags.Trunc && !flags.Excl:
		u, err = v.startUpload(name, access, existing.Mode().Perm(), false)
	case errors.Is(statErr, fs.ErrNotExist) && flags.Creat:
		u, err = v.startUpload(name, access, requestedMode(r, 0o644), flags.Excl)
	default:
		f, err = v.openInPlace(name, r, access)
	}
	switch {
	case err != nil:
		return nil, err
	case u != nil:
		return u, nil
	}
	return f, nil
}

func (v *volumeFS) openInPlace(name string, r *sftp.Request, access int) (*os.File, error) {
	flags := r.Pflags()
	if flags.Trunc {
		access |= os.O_TRUNC
	}
	if flags.Creat {
		// Create exclusively first, so that only a file this call made
		// gets the app's ownership and the client's mode.
		f, err := v.root.OpenFile(name, access|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, v.adopt(f, requestedMode(r, 0o644))
		}
		if flags.Excl || !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return v.root.OpenFile(name, access, 0)
}

// adopt gives a file this server just created to the app.
func (v *volumeFS) adopt(f *os.File, mode os.FileMode) error {
	if err := f.Chown(v.uid, v.gid); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return nil
}

// requestedMode is the permission the client asked for, without set-id bits
// (files here are made by root on the app's behalf).
func requestedMode(r *sftp.Request, fallback os.FileMode) os.FileMode {
	if !r.AttrFlags().Permissions {
		return fallback
	}
	return os.FileMode(r.Attributes().Mode) & (os.ModePerm | os.ModeSticky)
}

func (v *volumeFS) Filecmd(r *sftp.Request) error {
	name, err := volumePath(r.Filepath)
	if r.Method == "Symlink" {
		// Here Filepath is the link's target, as the client wrote it.
		return v.symlink(r.Filepath, r.Target)
	}
	if err != nil {
		return err
	}
	switch r.Method {
	case "Setstat":
		return v.setstat(name, r)
	case "Rename":
		target, err := volumePath(r.Target)
		if err != nil {
			return err
		}
		if _, err := v.root.Lstat(target); err == nil {
			return fmt.Errorf("rename %s: %w", r.Target, os.ErrExist)
		}
		return v.root.Rename(name, target)
	case "PosixRename":
		target, err := volumePath(r.Target)
		if err != nil {
			return err
		}
		return v.root.Rename(name, target)
	case "Rmdir":
		fi, err := v.root.Lstat(name)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("rmdir %s: not a directory", r.Filepath)
		}
		return v.root.Remove(name)
	case "Remove":
		fi, err := v.root.Lstat(name)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("remove %s: is a directory", r.Filepath)
		}
		return v.root.Remove(name)
	case "Mkdir":
		if err := v.root.Mkdir(name, 0o700); err != nil {
			return err
		}
		if err := v.root.Lchown(name, v.uid, v.gid); err != nil {
			return err
		}
		return v.root.Chmod(name, requestedMode(r, 0o755))
	case "Link":
		target, err := volumePath(r.Target)
		if err != nil {
			return err
		}
		return v.root.Link(name, target)
	}
	return sftp.ErrSSHFxOpUnsupported
}

// symlink makes a link only with a relative target that stays inside the
// volume, so that it also resolves inside it for tools that do not go
// through os.Root (the app's container, snapshots).
func (v *volumeFS) symlink(target, linkPath string) error {
	link, err := volumePath(linkPath)
	if err != nil {
		return err
	}
	resolved := path.Join(path.Dir(link), target)
	if path.IsAbs(target) || resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("symlink to %s leaves the app volume: %w", target, sftp.ErrSSHFxPermissionDenied)
	}
	if err := v.root.Symlink(target, link); err != nil {
		return err
	}
	return v.root.Lchown(link, v.uid, v.gid)
}

func (v *volumeFS) setstat(name string, r *sftp.Request) error {
	attrs, set := r.Attributes(), r.AttrFlags()
	if set.UidGid && (int(attrs.UID) != v.uid || int(attrs.GID) != v.gid) {
		return fmt.Errorf("files in the volume belong to the app: %w", sftp.ErrSSHFxPermissionDenied)
	}
	if u := v.uploadTo(name); u != nil {
		name = u.tmp
	}
	if set.Size {
		f, err := v.root.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return err
		}
	}
	if set.Permissions {
		if err := v.root.Chmod(name, requestedMode(r, 0)); err != nil {
			return err
		}
	}
	if set.Acmodtime {
		atime := time.Unix(int64(attrs.Atime), 0)
		if err := v.root.Chtimes(name, atime, attrs.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func (v *volumeFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := volumePath(r.Filepath)
	if err != nil {
		return nil, err
	}
	switch r.Method {
	case "List":
		dir, err := v.root.Open(name)
		if err != nil {
			return nil, err
		}
		defer dir.Close()
		entries, err := dir.Readdir(-1)
		if err != nil {
			return nil, err
		}
		return fileInfos(entries), nil
	case "Stat":
		fi, err := v.root.Stat(name)
		if err != nil {
			return nil, err
		}
		return fileInfos{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

func (v *volumeFS) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	name, err := volumePath(r.Filepath)
	if err != nil {
		return nil, err
	}
	fi, err := v.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	return fileInfos{fi}, nil
}

func (v *volumeFS) Readlink(clientPath string) (string, error) {
	name, err := volumePath(clientPath)
	if err != nil {
		return "", err
	}
	return v.root.Readlink(name)
}

type fileInfos []os.FileInfo

func (l fileInfos) ListAt(dst []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[offset:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}
