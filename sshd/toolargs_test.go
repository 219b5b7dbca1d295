package sshd

import (
	"strings"
	"testing"
)

func TestCheckSandboxedArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command string
		refused string // the option the refusal names; "" when accepted
	}{
		{"tar extract from stdin", "tar xzf - -C app", ""},
		{"tar create, dashed cluster", "tar -czvf - --exclude=node_modules --exclude .git .", ""},
		{"tar long options", "tar --extract --file=- --directory app --strip-components=1 --no-same-owner", ""},
		{"tar list", "tar -t -f -", ""},
		{"tar file names after --", "tar -cf - -- --checkpoint-action=exec=id", ""},
		{"tar checkpoint action", "tar -cf /dev/null --checkpoint=1 --checkpoint-action=exec=id .", "--checkpoint"},
		{"tar checkpoint action alone", "tar -cf /dev/null --checkpoint-action=exec=id .", "--checkpoint-action"},
		{"tar abbreviated checkpoint action", "tar -cf /dev/null --checkpoint-act=exec=id .", "--checkpoint-act"},
		{"tar checkpoint action after file names", "tar cf /dev/null . --checkpoint-action=exec=id", "--checkpoint-action"},
		{"tar to-command", "tar -x --to-command=sh -f -", "--to-command"},
		{"tar abbreviated to-command", "tar -x --to-com sh -f -", "--to-com"},
		{"tar compress program, short", "tar -cI sh -f - .", "-I"},
		{"tar compress program in old style", "tar cIf sh - .", "-I"},
		{"tar compress program, long", "tar -c --use-compress-program=sh -f - .", "--use-compress-program"},
		{"tar rsh command", "tar -c --rsh-command=/bin/sh -f h:x .", "--rsh-command"},
		{"tar remote archive", "tar -cf host:archive .", "-f"},
		{"tar remote archive, long", "tar -c --file host:archive .", "--file"},
		{"tar new volume script", "tar -cM -F ./script -f - .", "-M"},
		{"tar info script", "tar -c --info-script=./x -f - .", "--info-script"},
		{"tar xz", "tar -cJf - .", "-J"},
		{"tar files from", "tar -c -T list -f -", "-T"},
		{"tar value missing", "tar -cf", "-f"},
		{"rsync upload", "rsync --server -vlogDtpre.iLsfxCIvu . app/", ""},
		{"rsync download", "rsync --server --sender -vlogDtprze.iLsfxCIvu --delete . app/sub/", ""},
		{"rsync protocol version in -e", "rsync --server -logDtpre31.100iLsfxCIvu --partial-dir .rsync-partial . app/", ""},
		{"rsync daemon", "rsync --server --daemon .", "--daemon"},
		{"rsync config", "rsync --server --config=rsyncd.conf --daemon .", "--config"},
		{"rsync secluded args", "rsync --server -sre.iLsfxCIvu . app/", "-s"},
		{"rsync rsh", "rsync --server -r --rsh=sh . app/", "--rsh"},
		{"rsync -e with a command", "rsync --server -re sh . app/", "-e"},
		{"rsync client mode", "rsync -a app/ host:x", "only `rsync --server"},
		{"rsync unknown", "rsync --server --out-format=%n . app", "--out-format"},
		{"scp sink", "scp -v -r -p -d -t -- app/", ""},
		{"scp source", "scp -f app/index.html", ""},
		{"scp with a program", "scp -S sh -t app/", "-S"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSandboxedArgs(strings.Fields(tc.command))
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Fatal("accepted")
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("refusal %q does not name %s", err, tc.refused)
			}
		})
	}
}
