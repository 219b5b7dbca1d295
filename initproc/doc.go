// Package initproc is `rosti init`, the code the rosti binary runs when
// containerd starts it, in two roles:
//
//   - init (the default): PID 1 of every app container. It becomes a child
//     subreaper, starts the app command in its own process group, forwards
//     SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to that
//     group, reaps every zombie that is reparented to it, and exits with the
//     app's exit code (128+signal when the app was killed by a signal). The
//     command is the line of /srv/app/Procfile that matches the process type,
//     run through /bin/sh -c when the image has a shell and split into argv
//     otherwise; without such a line it is the command given after "--".
//     It starts in /srv/app; --dir names another tree, as a deploy does for
//     the release line of a tree staged beside the live one.
//     With --programs (the runtime gives it to web containers) init is also
//     the app's supervisord and cron: it runs the [program:x] sections of
//     /srv/conf/supervisor.d/*.conf (see Programs), runs the jobs of the
//     crontab installed with `crontab FILE` (see Cron), and answers
//     supervisorctl on a socket in the abstract namespace of the
//     container's network namespace (see DefaultControlSocket). A web
//     container whose Procfile and image name no command then runs only
//     those, until it is stopped, which is what Rosti's runtime did.
//   - static file server (--serve-static DIR): the built-in `static` runtime,
//     serving DIR over HTTP on $PORT.
//
// The same binary is the container commands supervisorctl, crontab and
// `rosti [TECH]` (see Tool and Tech): it looks at the name it was started
// as, busybox style. The runtime puts those names on the PATH of every
// image with read-only bind mounts of the rosti binary in /usr/local/bin
// rather than with links in the built-in images: that way they exist in
// any image, pulled ones included, are always the running rosti's own and
// cannot be replaced by the app; /usr/local/bin is on the PATH of nearly
// every image.
//
// The package owns only these processes; it never talks to containerd, the
// store or the network beyond the static server's listener and the
// supervisorctl socket.
package initproc
