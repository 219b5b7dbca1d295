package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// adminClient talks to a running `rosti serve` over its admin socket.
type adminClient struct {
	socket string
	http   *http.Client
}

func newAdminClient(dataDir string) *adminClient {
	socket := filepath.Join(dataDir, "admin.sock")
	return &adminClient{socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}}
}

// call sends body (as JSON, or as is when it is an io.Reader) and decodes a
// JSON answer into out, or copies a raw answer to out when it is an
// io.Writer.
func (a *adminClient) call(method, path string, body any, out any) error {
	var rd io.Reader
	if r, ok := body.(io.Reader); ok {
		rd = r
	} else if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, "http://rosti"+path, rd)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("rosti serve is not running for this data dir (no server at %s); start it first, or pass --data", a.socket)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string              `json:"message"`
			Errors  map[string][]string `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if len(e.Errors) > 0 {
			return fmt.Errorf("%s: %v", e.Message, e.Errors)
		}
		return fmt.Errorf("%s (%s)", e.Message, resp.Status)
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func newAdminCmd() *cobra.Command {
	var dataDir string
	c := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands against a running rosti serve",
		Long: `Operator commands. They talk to the running rosti serve through the socket
<data>/admin.sock, which only root can open.` + envNote,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			return bindEnv(c)
		},
	}
	c.PersistentFlags().StringVar(&dataDir, "data", "/var/lib/rosti", "data directory of the rosti serve to talk to")
	client := func() *adminClient { return newAdminClient(dataDir) }
	c.AddCommand(
		adminCreateUserCmd(client),
		adminResetPasswordCmd(client),
		adminCreateTokenCmd(client),
		adminBackupCmd(client),
		adminPlansCmd(client),
		adminSetPlanCmd(client),
		adminRuntimesCmd(client),
		adminSetRuntimeCmd(client),
	)
	return c
}

func randomPassword() string {
	raw := make([]byte, 15)
	_, _ = rand.Read(raw)
	return base64.RawURLEncoding.EncodeToString(raw)
}

func adminCreateUserCmd(client func() *adminClient) *cobra.Command {
	var password, email string
	var superuser bool
	c := &cobra.Command{
		Use:   "create-user USERNAME",
		Short: "Create an account (with its default company); prints a generated password unless --password is given",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			generated := password == ""
			if generated {
				password = randomPassword()
			}
			var out struct {
				ID int64 `json:"id"`
			}
			body := map[string]any{"username": args[0], "password": password, "email": email, "superuser": superuser}
			if err := client().call("POST", "/admin/users", body, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "created user %s (id %d)\n", args[0], out.ID)
			if generated {
				fmt.Fprintf(c.OutOrStdout(), "password: %s\n", password)
			}
			return nil
		},
	}
	c.Flags().StringVar(&password, "password", "", "password (generated when empty)")
	c.Flags().StringVar(&email, "email", "", "e-mail address")
	c.Flags().BoolVar(&superuser, "superuser", false, "make the user an administrator")
	return c
}

func adminResetPasswordCmd(client func() *adminClient) *cobra.Command {
	var password string
	c := &cobra.Command{
		Use:   "reset-password USERNAME",
		Short: "Set a user's password; prints a generated one unless --password is given",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			generated := password == ""
			if generated {
				password = randomPassword()
			}
			var out map[string]string
			if err := client().call("PUT", "/admin/users/"+url.PathEscape(args[0])+"/password", map[string]string{"password": password}, &out); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "password of %s changed\n", args[0])
			if generated {
				fmt.Fprintf(c.OutOrStdout(), "password: %s\n", password)
			}
			return nil
		},
	}
	c.Flags().StringVar(&password, "password", "", "new password (generated when empty)")
	return c
}

func adminCreateTokenCmd(client func() *adminClient) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "create-token USERNAME",
		Short: "Create an API token for a user and print it (it is shown only this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var out struct {
				Token string `json:"token"`
			}
			if err := client().call("POST", "/admin/users/"+url.PathEscape(args[0])+"/tokens", map[string]string{"name": name}, &out); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), out.Token)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "admin", "a name to recognise the token by")
	return c
}

func adminBackupCmd(client func() *adminClient) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the running store to FILE (- for standard output)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if args[0] == "-" {
				return client().call("GET", "/admin/backup", nil, c.OutOrStdout())
			}
			tmp := args[0] + ".partial"
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			err = client().call("GET", "/admin/backup", nil, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(tmp)
				return err
			}
			if err := os.Rename(tmp, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "backup written to %s\n", args[0])
			return nil
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func adminPlansCmd(client func() *adminClient) *cobra.Command {
	return &cobra.Command{
		Use: "plans", Short: "List plans", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var out []map[string]any
			if err := client().call("GET", "/admin/plans", nil, &out); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), out)
		},
	}
}

func adminSetPlanCmd(client func() *adminClient) *cobra.Command {
	var id, ram, disk, pids, cpu int64
	var price float64
	c := &cobra.Command{
		Use:   "set-plan NAME",
		Short: "Create a plan, or replace the plan --id",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var out map[string]any
			body := map[string]any{"id": id, "name": args[0], "ram": ram, "disk": disk, "pids": pids, "cpu_millis": cpu, "price": price}
			if err := client().call("POST", "/admin/plans", body, &out); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), out)
		},
	}
	c.Flags().Int64Var(&id, "id", 0, "id of the plan to replace (0 creates one)")
	c.Flags().Int64Var(&ram, "ram", 256, "memory limit, MB")
	c.Flags().Int64Var(&disk, "disk", 5000, "disk, MB")
	c.Flags().Int64Var(&pids, "pids", 256, "process limit")
	c.Flags().Int64Var(&cpu, "cpu-millis", 250, "CPU quota in millicores (1000 = one core)")
	c.Flags().Float64Var(&price, "price", 0, "price shown to users")
	return c
}

func adminRuntimesCmd(client func() *adminClient) *cobra.Command {
	return &cobra.Command{
		Use: "runtimes", Short: "List runtimes", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var out []map[string]any
			if err := client().call("GET", "/admin/runtimes", nil, &out); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), out)
		},
	}
}

func adminSetRuntimeCmd(client func() *adminClient) *cobra.Command {
	var id int64
	var image string
	var command []string
	var isDefault bool
	c := &cobra.Command{
		Use:   "set-runtime NAME",
		Short: "Create a runtime, or replace the runtime --id",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var out map[string]any
			body := map[string]any{"id": id, "name": args[0], "image": image, "command": command, "default": isDefault}
			if err := client().call("POST", "/admin/runtimes", body, &out); err != nil {
				return err
			}
			return printJSON(c.OutOrStdout(), out)
		},
	}
	c.Flags().Int64Var(&id, "id", 0, "id of the runtime to replace (0 creates one)")
	c.Flags().StringVar(&image, "image", "", "image reference, e.g. docker.io/library/node:22-alpine")
	c.Flags().StringSliceVar(&command, "command", nil, "default command when the app has no Procfile")
	c.Flags().BoolVar(&isDefault, "default", false, "make it the default runtime")
	return c
}
