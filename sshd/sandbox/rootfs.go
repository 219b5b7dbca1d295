package sandbox

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// sandboxPath is the PATH inside the sandbox, also where its tools are
// looked up on the host.
const sandboxPath = "/usr/local/bin:/usr/bin:/bin"

// tools are the host programs a sandbox holds: the file tools the gateway
// serves, what tar -z runs (gzip, through /bin/sh -c), and what the gateway
// itself runs to deploy a git push (env, xargs, cp).
var tools = []string{"rsync", "scp", "tar", "git", "gzip", "sh", "env", "xargs", "cp"}

// toolData are the other host files tools need: tar -z runs /bin/sh by
// that name, git runs its own subcommands (index-pack, unpack-objects, gc)
// from its exec path, and git init copies its templates.
var toolData = []string{"/bin/sh", "/usr/lib/git-core/git", "/usr/share/git-core/templates"}

// hostFiles lists what of the host a sandbox sees: the tools (as found in
// sandboxPath), their ELF interpreters and shared libraries, transitively,
// and toolData. A tool or data file the host lacks is left out: running it
// then fails, as it would on the host.
func hostFiles() ([]string, error) {
	search, err := librarySearchPath()
	if err != nil {
		return nil, err
	}
	files := map[string]bool{}
	var pending []string
	if err := os.Setenv("PATH", sandboxPath); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	for _, tool := range tools {
		if path, err := exec.LookPath(tool); err == nil {
			pending = append(pending, path)
		}
	}
	for _, path := range toolData {
		if _, err := os.Stat(path); err == nil {
			pending = append(pending, path)
		}
	}
	for len(pending) > 0 {
		path := pending[0]
		pending = pending[1:]
		if files[path] {
			continue
		}
		files[path] = true
		deps, err := elfDependencies(path, search)
		if err != nil {
			return nil, err
		}
		pending = append(pending, deps...)
	}
	list := make([]string, 0, len(files))
	for path := range files {
		list = append(list, path)
	}
	return list, nil
}

// elfDependencies are the interpreter and shared libraries path loads;
// none for a file that is not a dynamically linked ELF executable or
// library.
func elfDependencies(path string, search []string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil // a directory, a script, not ELF
	}
	defer f.Close()
	var deps []string
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			interp := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(interp, 0); err != nil {
				return nil, fmt.Errorf("sandbox: interpreter of %s: %w", path, err)
			}
			deps = append(deps, strings.TrimRight(string(interp), "\x00"))
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("sandbox: libraries of %s: %w", path, err)
	}
	dirs := search
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		if paths, err := f.DynString(tag); err == nil {
			for _, p := range paths {
				for _, dir := range filepath.SplitList(p) {
					dirs = append([]string{strings.ReplaceAll(dir, "$ORIGIN", filepath.Dir(path))}, dirs...)
				}
			}
		}
	}
	for _, lib := range needed {
		if found := findLibrary(lib, dirs, f.Class, f.Machine); found != "" {
			deps = append(deps, found)
		} else {
			return nil, fmt.Errorf("sandbox: %s needs %s, which is not in %s", path, lib, strings.Join(dirs, ":"))
		}
	}
	return deps, nil
}

// findLibrary finds name in dirs as the dynamic loader would, skipping
// libraries of another ELF class or machine (a 32-bit multilib copy).
func findLibrary(name string, dirs []string, class elf.Class, machine elf.Machine) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		ok := f.Class == class && f.Machine == machine
		f.Close()
		if ok {
			return path
		}
	}
	return ""
}

// librarySearchPath is the directories of /etc/ld.so.conf (and its
// includes), then the loader's defaults.
func librarySearchPath() ([]string, error) {
	var dirs []string
	var read func(file string, depth int) error
	read = func(file string, depth int) error {
		f, err := os.Open(file)
		if errors.Is(err, os.ErrNotExist) || depth > 8 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		defer f.Close()
		lines := bufio.NewScanner(f)
		for lines.Scan() {
			line, _, _ := strings.Cut(lines.Text(), "#")
			line = strings.TrimSpace(line)
			if pattern, ok := strings.CutPrefix(line, "include "); ok {
				matches, _ := filepath.Glob(strings.TrimSpace(pattern))
				for _, m := range matches {
					if err := read(m, depth+1); err != nil {
						return err
					}
				}
			} else if filepath.IsAbs(line) {
				dirs = append(dirs, line)
			}
		}
		return lines.Err()
	}
	if err := read("/etc/ld.so.conf", 0); err != nil {
		return nil, err
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib"), nil
}

// addHostPath makes path resolve inside root as it does on the host: each
// symlink on the way (merged-usr's /lib -> usr/lib, /bin/sh -> dash) is
// copied as a link, directories are created, and the file or directory
// path names is bound read-only.
func addHostPath(root, path string) error {
	for range 40 { // as the kernel's limit on symlinks in one lookup
		parts := strings.Split(strings.Trim(filepath.Clean(path), "/"), "/")
		dir := "/"
		resolved := false
		for i, part := range parts {
			host := filepath.Join(dir, part)
			fi, err := os.Lstat(host)
			if err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
			inside := root + host
			last := i == len(parts)-1
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(host)
				if err != nil {
					return fmt.Errorf("sandbox: %w", err)
				}
				if _, err := os.Lstat(inside); errors.Is(err, os.ErrNotExist) {
					if err := os.Symlink(target, inside); err != nil {
						return fmt.Errorf("sandbox: %w", err)
					}
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join(dir, target)
				}
				path = filepath.Join(append([]string{target}, parts[i+1:]...)...)
				resolved = true
			case fi.IsDir() && last:
				return bindDir(host, inside, readOnlyFlags)
			case fi.IsDir():
				if err := os.Mkdir(inside, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
					return fmt.Errorf("sandbox: %w", err)
				}
				dir = host
				continue
			case last:
				if _, err := os.Lstat(inside); err == nil {
					return nil // bound already, through another name
				}
				if err := os.WriteFile(inside, nil, 0o644); err != nil {
					return fmt.Errorf("sandbox: %w", err)
				}
				return bind(host, inside, readOnlyFlags)
			default:
				return fmt.Errorf("sandbox: %s is not a directory", host)
			}
			if resolved {
				break
			}
		}
		if !resolved {
			return nil
		}
	}
	return fmt.Errorf("sandbox: too many symlinks in %s", path)
}
