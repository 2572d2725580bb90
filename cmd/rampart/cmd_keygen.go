package main

import (
	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/codec"
)

func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random 256-bit key (base64): for RAMPART_PAYLOAD_KEY or a key file, or as an API token",
		Long: `keygen prints a random AES-256 key, base64-encoded. Server and worker encrypt
Temporal payloads with the first key of RAMPART_PAYLOAD_KEY (or of the file
--payload-key-file names) and decrypt with any of them: to rotate, put the new key
first and keep the old one after it until the runs recorded under it are gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := codec.NewKey()
			if err != nil {
				return err
			}
			cmd.Println(codec.EncodeKey(key))
			return nil
		},
	}
}
