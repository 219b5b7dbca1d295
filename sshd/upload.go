package sshd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync/atomic"

	"github.com/pkg/sftp"

	"github.com/rosti-paas/rosti/sshd/sandbox"
)

// Uploads over SFTP land under their final name only when complete. A file
// opened to be written from scratch (SSH_FXF_TRUNC on an existing regular
// file, or SSH_FXF_CREAT of a file that does not exist yet, exclusive or
// not: what OpenSSH's sftp put and scp send) is written under a hidden
// temporary name in the same directory, .NAME.rosti-upload-XXXXXXXX, owned by
// the app with the mode the file will have; when the client closes its
// handle and every write succeeded, the temporary takes the final name in
// one rename (a link for an exclusive create, which fails if the name was
// taken meanwhile). A session cut before that (the client gone, rosti
// shutting down past its budget) or a failed write (a full disk) removes the
// temporary, and the final name keeps its former content, or stays absent.
// Until then a stat of the final name shows what it held before; an
// SSH_FXP_FSETSTAT on the handle (sftp put -p), which reaches the server as
// a setstat of the name, applies to the upload under way in this session.
//
// Everything else writes in place as before: a file opened without
// truncating it (SSH_FXF_APPEND, as sftp reput / put -a resumes, or writes
// at offsets into an existing file), and a name that is not a regular file
// (a symbolic link is written through, a directory fails as it would).
//
// The temporary costs the room of a second copy during the upload. A
// temporary left by rosti being killed (kill -9, a power cut) stays as a
// hidden file the app may remove.
const uploadSuffix = ".rosti-upload-"

// upload is a file being written under a temporary name in the volume.
type upload struct {
	*os.File
	volume    *volumeFS
	tmp, name string // paths relative to the volume root
	exclusive bool
	// failed is set by a failed write or a transfer cut before the
	// client closed the handle.
	failed atomic.Bool
}

// startUpload creates name's temporary, owned by the app with mode, open
// with access (os.O_WRONLY or os.O_RDWR).
func (v *volumeFS) startUpload(name string, access int, mode os.FileMode, exclusive bool) (*upload, error) {
	dir, base := path.Split(name)
	// Room for the suffix within the usual 255-byte name limit.
	if len(base) > 200 {
		base = base[:200]
	}
	for attempt := 0; ; attempt++ {
		random := make([]byte, 4)
		if _, err := rand.Read(random); err != nil {
			return nil, err
		}
		tmp := dir + "." + base + uploadSuffix + hex.EncodeToString(random)
		f, err := v.root.OpenFile(tmp, access|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := v.adopt(f, mode); err != nil {
			v.root.Remove(tmp)
			return nil, err
		}
		u := &upload{File: f, volume: v, tmp: tmp, name: name, exclusive: exclusive}
		v.trackUpload(u)
		return u, nil
	}
}

func (u *upload) WriteAt(p []byte, off int64) (int, error) {
	n, err := u.File.WriteAt(p, off)
	if err != nil {
		u.failed.Store(true)
	}
	return n, err
}

// TransferError is how the SFTP server says the session ended with the
// handle still open: the upload is not complete.
func (u *upload) TransferError(error) { u.failed.Store(true) }

// Close gives the upload its final name when it is complete, and removes
// the temporary otherwise.
func (u *upload) Close() error {
	u.volume.forgetUpload(u)
	err := u.File.Close()
	if err == nil && u.failed.Load() {
		err = fmt.Errorf("the upload of %s did not complete; it keeps its former content", u.clientPath())
	}
	if err == nil {
		if !u.exclusive {
			if err = u.volume.root.Rename(u.tmp, u.name); err == nil {
				return nil
			}
		} else if err = u.volume.root.Link(u.tmp, u.name); errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%s was created by someone else during the upload: %w", u.clientPath(), sftp.ErrSSHFxFailure)
		}
	}
	if removeErr := u.volume.root.Remove(u.tmp); err == nil {
		err = removeErr
	}
	return err
}

func (u *upload) clientPath() string { return path.Join(sandbox.VolumePath, u.name) }

func (v *volumeFS) trackUpload(u *upload) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.uploads == nil {
		v.uploads = map[string]*upload{}
	}
	v.uploads[u.name] = u
}

func (v *volumeFS) forgetUpload(u *upload) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.uploads[u.name] == u {
		delete(v.uploads, u.name)
	}
}

// uploadTo is this session's latest upload under way to name, or nil.
func (v *volumeFS) uploadTo(name string) *upload {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.uploads[name]
}
