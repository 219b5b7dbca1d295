package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// bindEnv lets every flag of c be set by ROSTI_<NAME> (dashes become
// underscores); a flag given on the command line wins.
func bindEnv(c *cobra.Command) error {
	var err error
	visit := func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "ROSTI_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if setErr := f.Value.Set(v); setErr != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, setErr)
			}
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	return err
}

// envNote is appended to a command's help to say the above.
const envNote = "\nEvery flag can also be set with an environment variable ROSTI_<FLAG>, e.g. ROSTI_APPS_DOMAIN for --apps-domain; the command line wins."
