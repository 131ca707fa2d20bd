package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Without their flags, commands take TLS files from these, read when they
// run, like $DORA_TOKEN.
const (
	envTLSCert = "DORA_TLS_CERT"
	envTLSKey  = "DORA_TLS_KEY"
	envTLSCA   = "DORA_TLS_CA"
)

func orEnv(flag, env string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv(env)
}

// serverTLS is the coordinator's side of TLS, from PEM files of its
// certificate (with any intermediates) and key; no files, no TLS.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	certFile, keyFile = orEnv(certFile, envTLSCert), orEnv(keyFile, envTLSKey)
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("TLS needs both --tls-cert and --tls-key (or $" + envTLSCert + " and $" + envTLSKey + ")")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}, nil
}

// clientTLS checks the coordinator's certificate against the PEM
// certificates in caFile; no file, no TLS.
func clientTLS(caFile string) (*tls.Config, error) {
	caFile = orEnv(caFile, envTLSCA)
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the TLS CA %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, nil
}
