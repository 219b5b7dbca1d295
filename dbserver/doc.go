// Package dbserver owns the database servers that storages live in: one
// PostgreSQL and one MariaDB, run by rosti itself from the distribution's
// packages with their data under <data>/storages/, or existing servers the
// operator names with an admin DSN. It starts a managed server when its
// type is first used, restarts it when it dies, adopts one an earlier rosti
// left running, and lets it keep running when rosti stops (apps keep their
// databases while rosti restarts). It provisions a database and a user of
// the same name per storage, sets passwords (sent to the server as
// verifiers or hashes, never in clear), reports sizes and drops both.
//
// A managed server listens on every IPv4 address at its port, and a
// firewall chain of its own lets in only loopback and the apps' subnet;
// the server's own access rules (pg_hba.conf, MariaDB's skip-name-resolve
// and per-database grants) restrict logins again behind it. It knows
// nothing of companies, the store or HTTP, and touches nothing on the host
// but its data directory (making rosti's data dir traversable for the
// servers' system users), its processes and its firewall chains.
package dbserver
