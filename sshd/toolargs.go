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
	noValue   = option{}
	withValue = option{value: true}
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
		'c': noValue, 'x': noValue, 't': noValue, 'v': noValue, 'p': noValue, 'z': noValue, 'k': noValue, 'm': noValue,
		'o': noValue, 'h': noValue, 'U': noValue, 'O': noValue, 'P': noValue, 'S': noValue, 'i': noValue, 'B': noValue,
		'f': {value: true, check: tarLocalFile},
		'C': withValue,
		'b': withValue,
		'H': withValue,
	}
	tarLong = map[string]option{
		"--create": noValue, "--extract": noValue, "--get": noValue, "--list": noValue, "--verbose": noValue,
		"--preserve-permissions": noValue, "--same-permissions": noValue, "--no-same-permissions": noValue,
		"--same-owner": noValue, "--no-same-owner": noValue, "--numeric-owner": noValue, "--preserve-order": noValue,
		"--gzip": noValue, "--gunzip": noValue, "--ungzip": noValue, "--keep-old-files": noValue, "--keep-newer-files": noValue,
		"--skip-old-files": noValue, "--overwrite": noValue, "--overwrite-dir": noValue, "--no-overwrite-dir": noValue,
		"--unlink-first": noValue, "--recursive-unlink": noValue, "--touch": noValue, "--dereference": noValue,
		"--to-stdout": noValue, "--absolute-names": noValue, "--sparse": noValue, "--ignore-zeros": noValue,
		"--ignore-failed-read": noValue, "--one-file-system": noValue, "--totals": noValue, "--no-recursion": noValue,
		"--recursion": noValue, "--exclude-vcs": noValue, "--exclude-vcs-ignores": noValue, "--exclude-backups": noValue,
		"--exclude-caches": noValue, "--wildcards": noValue, "--no-wildcards": noValue, "--anchored": noValue,
		"--no-anchored": noValue, "--ignore-case": noValue, "--no-ignore-case": noValue, "--delay-directory-restore": noValue,
		"--no-delay-directory-restore": noValue, "--read-full-records": noValue, "--force-local": noValue,
		"--show-transformed-names": noValue,
		"--file":                   {value: true, check: tarLocalFile}, "--directory": withValue, "--exclude": withValue,
		"--strip-components": withValue, "--transform": withValue, "--xform": withValue, "--format": withValue,
		"--owner": withValue, "--group": withValue, "--mode": withValue, "--mtime": withValue, "--sort": withValue,
		"--warning": withValue, "--blocking-factor": withValue, "--record-size": withValue, "--newer": withValue,
		"--after-date": withValue, "--newer-mtime": withValue, "--label": withValue,
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
var scpShort = map[byte]option{'t': noValue, 'f': noValue, 'd': noValue, 'r': noValue, 'p': noValue, 'v': noValue, 'q': noValue}

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
		'v': noValue, 'q': noValue, 'b': noValue, 'u': noValue, 'n': noValue, 'l': noValue, 'd': noValue, 'K': noValue,
		'm': noValue, 'O': noValue, 'J': noValue, 'y': noValue, 'L': noValue, 'k': noValue, 'W': noValue, 'H': noValue,
		'o': noValue, 'g': noValue, 'D': noValue, 't': noValue, 'U': noValue, 'N': noValue, 'p': noValue, 'E': noValue,
		'A': noValue, 'X': noValue, 'r': noValue, 'c': noValue, 'C': noValue, 'I': noValue, 'R': noValue, 'x': noValue,
		'S': noValue, 'z': noValue,
		'e': {value: true, check: rsyncCapabilities},
		'B': withValue,
		'@': withValue,
	}
	rsyncLong = map[string]option{
		"--server": noValue, "--sender": noValue, "--iconv": withValue, "--list-only": noValue, "--no-r": noValue,
		"--compress-level": withValue, "--no-specials": noValue, "--specials": noValue, "--log-format": withValue,
		"--msgs2stderr": noValue, "--no-msgs2stderr": noValue, "--timeout": withValue, "--bwlimit": withValue,
		"--backup-dir": withValue, "--suffix": withValue, "--checksum-choice": withValue, "--new-compress": noValue,
		"--old-compress": noValue, "--compress-choice": withValue, "--max-delete": withValue, "--min-size": withValue,
		"--max-size": withValue, "--delete-before": noValue, "--delete-delay": noValue, "--delete-during": noValue,
		"--delete-after": noValue, "--delete": noValue, "--delete-excluded": noValue, "--force": noValue,
		"--only-write-batch": withValue, "--super": noValue, "--size-only": noValue, "--stats": noValue,
		"--skip-compress": withValue, "--max-alloc": withValue, "--delete-missing-args": noValue,
		"--ignore-missing-args": noValue, "--modify-window": withValue, "--checksum-seed": withValue,
		"--partial-dir": withValue, "--delay-updates": noValue, "--partial": noValue, "--ignore-errors": noValue,
		"--copy-unsafe-links": noValue, "--safe-links": noValue, "--numeric-ids": noValue, "--use-qsort": noValue,
		"--usermap": withValue, "--groupmap": withValue, "--ignore-existing": noValue, "--existing": noValue,
		"--temp-dir": withValue, "--fsync": noValue, "--compare-dest": withValue, "--copy-dest": withValue,
		"--link-dest": withValue, "--info": withValue, "--append": noValue, "--inplace": noValue, "--no-W": noValue,
		"--files-from": withValue, "--from0": noValue, "--no-relative": noValue, "--no-implied-dirs": noValue,
		"--write-devices": noValue, "--remove-source-files": noValue, "--remove-sent-files": noValue,
		"--copy-devices": noValue, "--preallocate": noValue, "--open-noatime": noValue, "--mkpath": noValue,
	}
	rsyncRefused = map[string]string{
		"-s": rsyncSecluded, "--protect-args": rsyncSecluded, "--secluded-args": rsyncSecluded,
		"--daemon": rsyncSpawns, "--config": rsyncSpawns, "--dparam": rsyncSpawns, "-M": rsyncSpawns,
		"--rsh": rsyncSpawns, "--rsync-path": rsyncSpawns,
	}
)

const (
	rsyncSecluded = "its options would reach rsync over the connection, unchecked; run the client without -s"
	rsyncSpawns   = "the server side never starts a daemon or a remote shell"
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
