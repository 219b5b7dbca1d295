package sshd

import (
	"fmt"
	"strings"

	shlex "github.com/anmitsu/go-shlex"
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// GitUser is the login of Drycc-style remotes, ssh://git@HOST:PORT/<app>.git:
// any user's key gets in, and may only push to an app it opens (the app
// is named by the path, and authorized as a login to it would be).
const GitUser = "git"

// gitKeyKey is where a `git` login keeps its key until the push names the
// app.
type gitKeyKey struct{}

func gitKeyOf(ctx ssh.Context) (gossh.PublicKey, bool) {
	key, ok := ctx.Value(gitKeyKey{}).(gossh.PublicKey)
	return key, ok
}

func (s *Server) acceptGitKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if err := s.platform.KnownKey(ctx, key); err != nil {
		s.log.Debug("key refused", "user", GitUser, "source", sourceHost(ctx.RemoteAddr()), "key", gossh.FingerprintSHA256(key), "err", err)
		return false
	}
	ctx.SetValue(gitKeyKey{}, gossh.PublicKey(key))
	return true
}

// gitUserSession serves a `git` login: git-receive-pack of one app's
// repository, nothing else.
func (s *Server) gitUserSession(sess ssh.Session, key gossh.PublicKey) int {
	args, err := shlex.Split(sess.RawCommand(), true)
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "rosti: cannot parse the command: %v\n", err)
		return 2
	}
	var repo string
	switch {
	case len(args) == 2 && args[0] == "git-receive-pack":
		repo = args[1]
	case len(args) == 3 && args[0] == "git" && args[1] == "receive-pack":
		repo = args[2]
	default:
		fmt.Fprintf(sess.Stderr(), "rosti: the %s user only takes pushes: git push ssh://%s@HOST:PORT/<app>.git; log in as the app for anything else\n", GitUser, GitUser)
		return 1
	}
	app := strings.TrimSuffix(strings.Trim(strings.TrimPrefix(repo, "~"), "/"), ".git")
	access, err := s.platform.AuthorizeKey(sess.Context(), app, key)
	if err == nil && (access.UID == 0 || access.GID == 0) {
		s.log.Error("push refused: platform granted root", "app", app)
		err = errRootGrant
	}
	if err != nil {
		s.log.Info("git push refused", "user", GitUser, "app", app, "source", sourceHost(sess.RemoteAddr()), "err", err)
		fmt.Fprintf(sess.Stderr(), "rosti: no app %q that your key opens\n", app)
		return 1
	}
	s.log.Info("git push", "user", GitUser, "app", access.AppName, "source", sourceHost(sess.RemoteAddr()))
	return s.gitReceive(sess, access)
}

var errRootGrant = fmt.Errorf("platform granted root")
