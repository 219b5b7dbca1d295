package store

import "time"

// User is an account. The password is kept only as a hash.
type User struct {
	ID           int64      `json:"id"`
	Username     string     `json:"username"`
	Email        string     `json:"email"`
	FirstName    string     `json:"first_name"`
	LastName     string     `json:"last_name"`
	PasswordHash string     `json:"password_hash"`
	IsSuperuser  bool       `json:"is_superuser"`
	IsActive     bool       `json:"is_active"`
	Created      time.Time  `json:"created"`
	LastLogin    *time.Time `json:"last_login,omitempty"`
}

// Token is an API token. Only the sha256 of its secret is stored; the secret
// is shown once, when the token is made.
type Token struct {
	ID       int64      `json:"id"`
	Hash     string     `json:"hash"`
	UserID   int64      `json:"user_id"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

// Role is a member's standing in a company.
type Role string

// Roles, strongest first.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Company groups apps and the users who may manage them.
type Company struct {
	ID      int64     `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Membership is a user's role in one company.
type Membership struct {
	UserID    int64 `json:"user_id"`
	CompanyID int64 `json:"company_id"`
	Role      Role  `json:"role"`
}

// Plan is a size an app can run at.
type Plan struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	CPUMillis int64   `json:"cpu_millis"`
	MemoryMB  int64   `json:"memory_mb"`
	Pids      int64   `json:"pids"`
	DiskMB    int64   `json:"disk_mb"`
	Price     float64 `json:"price"`
}

// Runtime is an image apps are built on; "platform" in tsuru.
type Runtime struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Image     string   `json:"image"`
	Command   []string `json:"command,omitempty"`
	Languages []string `json:"languages,omitempty"`
	Default   bool     `json:"default"`
	Show      bool     `json:"show"`
}

// App desired states.
const (
	StateRunning = "running"
	StateStopped = "stopped"
)

// App modes.
const (
	ModeHTTP    = "http"
	ModeHTTPSLE = "https+le"
)

// App is the description of an application; what runs it is derived from it.
type App struct {
	ID              int64          `json:"id"`
	CompanyID       int64          `json:"company_id"`
	OwnerID         int64          `json:"owner_id"`
	Name            string         `json:"name"`
	Created         time.Time      `json:"created"`
	Image           string         `json:"image"`
	PlanID          int64          `json:"plan_id"`
	AppPort         int            `json:"app_port"`
	Mode            string         `json:"mode"`
	HTTPSEnforced   bool           `json:"https_enforced"`
	Domains         []string       `json:"domains"`
	SSHKeys         []string       `json:"ssh_keys"`
	SSHPasswordHash string         `json:"ssh_password_hash,omitempty"`
	DesiredState    string         `json:"desired_state"`
	Processes       map[string]int `json:"processes"`
	// Healthcheck is the HTTP path a new version must answer (2xx or 3xx)
	// before it takes traffic; empty means a TCP connect to AppPort.
	Healthcheck string `json:"healthcheck,omitempty"`
	UID         uint32 `json:"uid"`
	// Generation grows with every restart or rebuild asked for, so that the
	// containers of the previous generation are replaced.
	Generation int64 `json:"generation"`
	// Config is the app's environment: given to every process and to the
	// release step. Values are the user's secrets: never logged.
	Config map[string]string `json:"config,omitempty"`
	// Release is the version of the release that runs (0 before the first).
	Release int64 `json:"release"`
}

// Enabled tells whether the app is meant to run.
func (a App) Enabled() bool { return a.DesiredState == StateRunning }

// Release outcomes.
const (
	ReleasePending   = "pending"
	ReleaseSucceeded = "succeeded"
	ReleaseFailed    = "failed"
)

// Release is one version of what an app runs: vN with its image, config,
// files and process types, who made it and how it went. Every deploy,
// image change, config change and rollback makes one.
type Release struct {
	AppID   int64             `json:"app_id"`
	Version int64             `json:"version"`
	Image   string            `json:"image"`
	Config  map[string]string `json:"config,omitempty"`
	// ProcessTypes are the Procfile's types when the release was made.
	ProcessTypes []string `json:"process_types,omitempty"`
	// Source says what made it: create, git, upload, image, config, rollback.
	Source   string    `json:"source"`
	Revision string    `json:"revision,omitempty"` // the git commit of a push
	Summary  string    `json:"summary"`
	Author   string    `json:"author"`
	Created  time.Time `json:"created"`
	Status   string    `json:"status"`
	Message  string    `json:"message,omitempty"` // why it failed
	// Tree names the kept copy of /srv/app this release ran with ("" when
	// none was kept); TreeDigest fingerprints that content.
	Tree       string `json:"tree,omitempty"`
	TreeDigest string `json:"tree_digest,omitempty"`
	// RolledBackTo is the version a rollback restored.
	RolledBackTo int64 `json:"rolled_back_to,omitempty"`
}
