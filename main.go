// Command rosti turns a Linux host into a small self-hosted PaaS.
package main

import "github.com/rosti-paas/rosti/cmd"

func main() {
	cmd.Execute()
}
