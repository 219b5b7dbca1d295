package sshd

import (
	"errors"
	"fmt"
	"strings"
)

// The sandbox keeps a tool inside the app's volume and cgroup, but a tool
// that can be told to run other programs (tar --to-command, rsync --daemon
// with a user's rsyncd.conf) would turn SSH access into running anything
// the sandbox holds. So the gateway passes a sandboxed tool only the
// arguments its clients send, and refuses the rest before anything runs,
// naming the option. Options are matched whole: GNU tar would take a prefix
// of a refused option (--to-com) for it, so no prefix is ever accepted.

// toolArgError is a refused command line; its text goes to the client.
type toolArgError struct {
	tool, option, why string
}

func (e *toolArgError) Error() string {
	return fmt.Sprintf("%s option %s is not allowed here: %s", e.tool, e.option, e.why)
}

// checkSandboxedArgs accepts args (the tool first) when every option is one
// the tool's clients use and none makes it start another program.
func checkSandboxedArgs(args []string) error {
	switch args[0] {
	case "tar":
		return checkTarArgs(args[1:])
	case "rsync":
		return checkRsyncArgs(args[1:])
	case "scp":
		return checkScpArgs(args[1:])
	}
	return fmt.Errorf("%s does not run here", args[0])
}

// option is one accepted option: whether it takes a value, and a check of
// that value (nil: any).
type option struct {
	value bool
	check func(value string) string // "" if fine, else why not
}

var (
	flag  = option{}
	value = option{value: true}
)

// Reasons for refusing options that are dangerous rather than merely
// unneeded; any other unknown option is refused as not known to be safe.
const (
	tarSpawns   = "it makes tar run another program"
	tarCompress = "the only compression here is -z (gzip); compress or decompress on your side of the pipe"
)

var tarRefused = map[string]string{
	"--checkpoint-action": tarSpawns, "--to-command": tarSpawns, "--use-compress-program": tarSpawns,
	"-I": tarSpawns, "--rsh-command": tarSpawns, "--rmt-command": tarSpawns, "--info-script": tarSpawns,
	"--new-volume-script": tarSpawns, "-F": tarSpawns,
	"-j": tarCompress, "-J": tarCompress, "-Z": tarCompress, "-a": tarCompress, "--bzip2": tarCompress,
	"--xz": tarCompress, "--lzma": tarCompress, "--lzip": tarCompress, "--lzop": tarCompress,
	"--zstd": tarCompress, "--compress": tarCompress, "--uncompress": tarCompress, "--auto-compress": tarCompress,
}

// tarLocalFile refuses archive names with a colon, which GNU tar opens on
// a remote host through rsh.
func tarLocalFile(name string) string {
	if strings.Contains(name, ":") {
		return "an archive name with a colon is opened through a remote shell; use -f - or a plain path"
	}
	return ""
}

// tarShort and tarLong are the options of GNU tar accepted in the sandbox:
// what `ssh app tar ...` pipelines use to pack and unpack (-c, -x, -t with
// -f -, -C, -z, excludes, ownership and permission choices). -z is the one
// compressor: tar runs gzip with fixed arguments.
var (
	tarShort = map[byte]option{
		'c': flag, 'x': flag, 't': flag, 'v': flag, 'p': flag, 'z': flag, 'k': flag, 'm': flag,
		'o': flag, 'h': flag, 'U': flag, 'O': flag, 'P': flag, 'S': flag, 'i': flag, 'B': flag,
		'f': {value: true, check: tarLocalFile}, 'C': value, 'b': value, 'H': value,
	}
	tarLong = map[string]option{
		"--create": flag, "--extract": flag, "--get": flag, "--list": flag, "--verbose": flag,
		"--preserve-permissions": flag, "--same-permissions": flag, "--no-same-permissions": flag,
		"--same-owner": flag, "--no-same-owner": flag, "--numeric-owner": flag, "--preserve-order": flag,
		"--gzip": flag, "--gunzip": flag, "--ungzip": flag, "--keep-old-files": flag, "--keep-newer-files": flag,
		"--skip-old-files": flag, "--overwrite": flag, "--overwrite-dir": flag, "--no-overwrite-dir": flag,
		"--unlink-first": flag, "--recursive-unlink": flag, "--touch": flag, "--dereference": flag,
		"--to-stdout": flag, "--absolute-names": flag, "--sparse": flag, "--ignore-zeros": flag,
		"--ignore-failed-read": flag, "--one-file-system": flag, "--totals": flag, "--no-recursion": flag,
		"--recursion": flag, "--exclude-vcs": flag, "--exclude-vcs-ignores": flag, "--exclude-backups": flag,
		"--exclude-caches": flag, "--wildcards": flag, "--no-wildcards": flag, "--anchored": flag,
		"--no-anchored": flag, "--ignore-case": flag, "--no-ignore-case": flag, "--delay-directory-restore": flag,
		"--no-delay-directory-restore": flag, "--read-full-records": flag, "--force-local": flag,
		"--show-transformed-names": flag,
		"--file":                   {value: true, check: tarLocalFile}, "--directory": value, "--exclude": value,
		"--strip-components": value, "--transform": value, "--xform": value, "--format": value,
		"--owner": value, "--group": value, "--mode": value, "--mtime": value, "--sort": value,
		"--warning": value, "--blocking-factor": value, "--record-size": value, "--newer": value,
		"--after-date": value, "--newer-mtime": value, "--label": value,
	}
)

// checkTarArgs checks GNU tar's three spellings: old style (a first word
// of letters without a dash, their values following in order), short
// clusters (-xzf -) and long options (--file=- or --file -); after "--"
// everything is a file name. Options may come after file names, as tar
// itself reads them.
func checkTarArgs(args []string) error {
	if len(args) > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-") {
		expanded, err := expandOldTar(args[0], args[1:])
		if err != nil {
			return err
		}
		args = expanded
	}
	return checkOptions("tar", args, tarShort, tarLong, tarRefused)
}

// expandOldTar rewrites old-style `tar xzf - dir` as `-x -z -f - dir`.
func expandOldTar(letters string, rest []string) ([]string, error) {
	var out []string
	for i := 0; i < len(letters); i++ {
		name := "-" + letters[i:i+1]
		out = append(out, name)
		opt, ok := tarShort[letters[i]]
		if !ok || !opt.value {
			continue
		}
		if len(rest) == 0 {
			return nil, &toolArgError{"tar", name, "it needs a value"}
		}
		out, rest = append(out, rest[0]), rest[1:]
	}
	return append(out, rest...), nil
}

// checkOptions walks args as getopt does: short clusters, long options
// with "=" or a separate value, "--" ending options.
func checkOptions(tool string, args []string, short map[byte]option, long map[string]option, refused map[string]string) error {
	refuse := func(name string) error {
		if why, ok := refused[name]; ok {
			return &toolArgError{tool, name, why}
		}
		return &toolArgError{tool, name, "it is not one the gateway knows to be safe"}
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return nil
		case strings.HasPrefix(arg, "--"):
			name, val, hasVal := strings.Cut(arg, "=")
			opt, ok := long[name]
			if !ok {
				return refuse(name)
			}
			switch {
			case !opt.value && hasVal:
				return &toolArgError{tool, name, "it takes no value"}
			case opt.value && !hasVal:
				if i+1 == len(args) {
					return &toolArgError{tool, name, "it needs a value"}
				}
				i++
				val = args[i]
			}
			if opt.check != nil {
				if why := opt.check(val); why != "" {
					return &toolArgError{tool, name, why}
				}
			}
		case strings.HasPrefix(arg, "-") && arg != "-":
			for j := 1; j < len(arg); j++ {
				name := "-" + arg[j:j+1]
				opt, ok := short[arg[j]]
				if !ok {
					return refuse(name)
				}
				if !opt.value {
					continue
				}
				val := arg[j+1:]
				if val == "" {
					if i+1 == len(args) {
						return &toolArgError{tool, name, "it needs a value"}
					}
					i++
					val = args[i]
				}
				if opt.check != nil {
					if why := opt.check(val); why != "" {
						return &toolArgError{tool, name, why}
					}
				}
				break
			}
		}
	}
	return nil
}

// scpShort are the server-mode options OpenSSH's scp sends to the remote
// scp: -t (sink) or -f (source), -d, -r, -p, -v.
var scpShort = map[byte]option{'t': flag, 'f': flag, 'd': flag, 'r': flag, 'p': flag, 'v': flag, 'q': flag}

func checkScpArgs(args []string) error {
	return checkOptions("scp", args, scpShort, nil, nil)
}

// rsyncShort and rsyncLong are what rsync's client puts on the server's
// command line (server_options() in rsync's options.c), nothing else: the
// server never needs a shell, a daemon config or a remote host. -s (protect
// args) is refused because the protected arguments, options included,
// would then come over the connection where the gateway cannot check them.
// -e carries the client's protocol capability letters, never a command.
var (
	rsyncShort = map[byte]option{
		'v': flag, 'q': flag, 'b': flag, 'u': flag, 'n': flag, 'l': flag, 'd': flag, 'K': flag, 'm': flag,
		'O': flag, 'J': flag, 'y': flag, 'L': flag, 'k': flag, 'W': flag, 'H': flag, 'o': flag, 'g': flag,
		'D': flag, 't': flag, 'U': flag, 'N': flag, 'p': flag, 'E': flag, 'A': flag, 'X': flag, 'r': flag,
		'c': flag, 'C': flag, 'I': flag, 'R': flag, 'x': flag, 'S': flag, 'z': flag,
		'e': {value: true, check: rsyncCapabilities}, 'B': value, '@': value,
	}
	rsyncLong = map[string]option{
		"--server": flag, "--sender": flag, "--iconv": value, "--list-only": flag, "--no-r": flag,
		"--compress-level": value, "--no-specials": flag, "--specials": flag, "--log-format": value,
		"--msgs2stderr": flag, "--no-msgs2stderr": flag, "--timeout": value, "--bwlimit": value,
		"--backup-dir": value, "--suffix": value, "--checksum-choice": value, "--new-compress": flag,
		"--old-compress": flag, "--compress-choice": value, "--max-delete": value, "--min-size": value,
		"--max-size": value, "--delete-before": flag, "--delete-delay": flag, "--delete-during": flag,
		"--delete-after": flag, "--delete": flag, "--delete-excluded": flag, "--force": flag,
		"--only-write-batch": value, "--super": flag, "--size-only": flag, "--stats": flag,
		"--skip-compress": value, "--max-alloc": value, "--delete-missing-args": flag,
		"--ignore-missing-args": flag, "--modify-window": value, "--checksum-seed": value,
		"--partial-dir": value, "--delay-updates": flag, "--partial": flag, "--ignore-errors": flag,
		"--copy-unsafe-links": flag, "--safe-links": flag, "--numeric-ids": flag, "--use-qsort": flag,
		"--usermap": value, "--groupmap": value, "--ignore-existing": flag, "--existing": flag,
		"--temp-dir": value, "--fsync": flag, "--compare-dest": value, "--copy-dest": value,
		"--link-dest": value, "--info": value, "--append": flag, "--inplace": flag, "--no-W": flag,
		"--files-from": value, "--from0": flag, "--no-relative": flag, "--no-implied-dirs": flag,
		"--write-devices": flag, "--remove-source-files": flag, "--remove-sent-files": flag,
		"--copy-devices": flag, "--preallocate": flag, "--open-noatime": flag, "--mkpath": flag,
	}
	rsyncSecluded = "its options would reach rsync over the connection, unchecked; run the client without -s"
	rsyncSpawns   = "the server side never starts a daemon or a remote shell"
	rsyncRefused  = map[string]string{
		"-s": rsyncSecluded, "--protect-args": rsyncSecluded, "--secluded-args": rsyncSecluded,
		"--daemon": rsyncSpawns, "--config": rsyncSpawns, "--dparam": rsyncSpawns, "-M": rsyncSpawns,
		"--rsh": rsyncSpawns, "--rsync-path": rsyncSpawns,
	}
)

// rsyncCapabilities accepts the -e value rsync's client sends in server
// mode: "." or a protocol version, then capability letters.
func rsyncCapabilities(v string) string {
	flags := strings.TrimLeft(v, "0123456789.")
	if flags == v || strings.ContainsFunc(flags, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) {
		return "it carries the client's protocol flags (-e.LsfxC) here, never a command: the server runs no remote shell"
	}
	return ""
}

func checkRsyncArgs(args []string) error {
	if len(args) == 0 || args[0] != "--server" {
		return errors.New("only `rsync --server ...`, as an rsync client sends it, runs here")
	}
	return checkOptions("rsync", args, rsyncShort, rsyncLong, rsyncRefused)
}
