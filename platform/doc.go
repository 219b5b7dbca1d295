// Package platform holds the use cases every face of rosti shares: accounts
// and tokens, companies, the plan and runtime catalogue, apps and their
// releases, config, scale, deploys and rollbacks, storages (databases), the
// reconciler that makes containers match the store, and jobs. The REST
// dialects, the SSH gateway, the web UI and the command line call it; it
// calls the store, and (through interfaces it declares: Containers, Router,
// HealthCheck, Databases, Gateways) the runtime, the proxy and the database
// servers. It never speaks HTTP or SSH and never formats a response: it
// returns store's domain types and errors from the shared vocabulary
// (store.ErrNotFound, ErrConflict, ErrInvalid, and the auth errors in
// errors.go), wrapped with %w.
//
// Authorization: every exported call takes (ctx, actor). Calls about an app
// resolve it, by id within a company or by name (AppRef), through one
// function, authorizeApp (which also admits a user granted that one app,
// Drycc's perms), and company-wide calls through authorizeCompany;
// operator calls (catalogue, images, other users, backups) need a
// superuser. Objects the actor may not manage answer ErrNotFound, exactly
// like objects that do not exist. The SSH gateway's calls take the grant
// a login returned (AppAccess) in the actor's place.
//
// Releases: every change of what an app runs is a release vN (store.Release)
// made by deploy: a tree a face stages (git push; TreeSource), files
// uploaded into /srv/app and then a restart, an image change, a config
// change, a rollback. A deploy runs the Procfile's release step in the
// staged tree, keeps a copy of the tree for rollbacks (the last keptTrees
// trees, under /srv/.rosti/trees), swaps it in with one rename, moves the
// containers to the release without downtime and records the outcome; on
// any failure the app runs what it ran, with the files it had. Deploys,
// restarts and scaling of one app take turns (appLocks).
//
// Where this departs from DESIGN.md: a restart action makes a release
// when /srv/app changed since the current release (files uploaded over
// sftp, scp or rsync), because that restart is how those files go live and
// rolling back must be able to bring the previous ones back; a restart with
// nothing uploaded makes none, as DESIGN says. Plan and port changes
// restart the app without a release.
//
// The reconciler gives each app a worker of its own while it has work (at
// most maxParallelReconciles change containers at once; waiting for a
// health check or a drain does not count), so one app's slow health check
// or image pull never delays another app's restart. Routes are published
// one table at a time, each built from the latest state.
//
// Volumes (volumes.go): with Disks, each app's volume is a file system of
// its plan's size (internal/diskimage says why images and how rosti keeps
// its own share of the disk), made with the app so that one the host has
// no room for is refused (store.ErrNoSpace), grown with its plan, and
// shrunk with it only while the app is stopped. Volumes made before disk quotas stay plain directories, counted
// but not limited, rather than copied into an image under a running app.
//
// Web sign-ins (sessions.go, twofactor.go): sessions are kept as the hash
// of their secret; a user with two-factor sign-in gets a session that
// signs nobody in until a TOTP code or a recovery code completes it. Usage
// (usage.go): each app's memory and CPU are sampled once a minute and kept
// in memory only, for the web UI's charts.
package platform
