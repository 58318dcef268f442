// A franz-go client for the TLS and SASL checks of tls_sasl.py: it connects the way its
// flags say, then does one thing and prints one line.
//
//	franz-secure roundtrip FLAGS TOPIC COUNT
//	    produce COUNT keyed records to TOPIC (the record i has key "k{i%7}" and value
//	    "franz-v{i}"), read TOPIC back from the start of every partition, and print
//	    "OK key=value key=value ..." in the order read, or "ERR message".
//	franz-secure probe FLAGS
//	    ask for the cluster's metadata and print "OK" or "ERR message".
//
// FLAGS: -bootstrap HOST:PORT (required); -tls with -ca FILE, and -cert FILE -key FILE for a
// client certificate (always sent, see tlsConfig); -mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER with -user
// and -password (OAUTHBEARER sends -user as an unsigned token).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// How long one command may take: a refused connection is retried until then.
const commandTimeout = 30 * time.Second

func main() {
	if len(os.Args) < 2 {
		fail("usage: franz-secure roundtrip|probe FLAGS [TOPIC COUNT]")
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	bootstrap := fs.String("bootstrap", "", "broker HOST:PORT")
	useTLS := fs.Bool("tls", false, "connect with TLS")
	caFile := fs.String("ca", "", "PEM file of the CAs trusted for the broker's certificate")
	certFile := fs.String("cert", "", "PEM client certificate")
	keyFile := fs.String("key", "", "PEM client key")
	mechanism := fs.String("mechanism", "", "SASL mechanism")
	user := fs.String("user", "", "SASL user")
	password := fs.String("password", "", "SASL password")
	fs.Parse(os.Args[2:])

	opts := []kgo.Opt{kgo.SeedBrokers(*bootstrap), kgo.RequestRetries(2), kgo.RetryTimeout(10 * time.Second)}
	if *useTLS {
		cfg, err := tlsConfig(*caFile, *certFile, *keyFile)
		if err != nil {
			fail("ERR " + err.Error())
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if *mechanism != "" {
		m, err := saslMechanism(*mechanism, *user, *password)
		if err != nil {
			fail("ERR " + err.Error())
		}
		opts = append(opts, kgo.SASL(m))
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	switch cmd {
	case "probe":
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			fail("ERR " + err.Error())
		}
		defer cl.Close()
		if err := cl.Ping(ctx); err != nil {
			fail("ERR " + oneLine(err))
		}
		fmt.Println("OK")
	case "roundtrip":
		args := fs.Args()
		if len(args) != 2 {
			fail("ERR roundtrip needs TOPIC COUNT")
		}
		count, err := strconv.Atoi(args[1])
		if err != nil {
			fail("ERR " + err.Error())
		}
		got, err := roundtrip(ctx, opts, args[0], count)
		if err != nil {
			fail("ERR " + oneLine(err))
		}
		fmt.Println("OK " + strings.Join(got, " "))
	default:
		fail("ERR unknown command " + cmd)
	}
}

func roundtrip(ctx context.Context, opts []kgo.Opt, topic string, count int) ([]string, error) {
	producer, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return nil, err
	}
	records := make([]*kgo.Record, count)
	for i := range records {
		records[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%7)), Value: []byte(fmt.Sprintf("franz-v%d", i))}
	}
	err = producer.ProduceSync(ctx, records...).FirstErr()
	producer.Close()
	if err != nil {
		return nil, err
	}
	consumer, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	var got []string
	for len(got) < count {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("read %d of %d records before the deadline", len(got), count)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return got, errs[0].Err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Key)+"="+string(r.Value))
		})
	}
	return got, nil
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate in " + caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		// Sent whatever CAs the broker's certificate request names: Go (like OpenSSL)
		// would otherwise hold back a certificate no named CA signed, and the broker would
		// never see the untrusted certificate it is meant to refuse.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg, nil
}

func saslMechanism(name, user, password string) (sasl.Mechanism, error) {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: password}.AsSha512Mechanism(), nil
	case "OAUTHBEARER":
		return oauth.Auth{Token: unsignedToken(user)}.AsMechanism(), nil
	}
	return nil, errors.New("unknown SASL mechanism " + name)
}

// unsignedToken is a JWT with "alg":"none", the kind Apache Kafka's unsecured OAUTHBEARER
// handler accepts; here it only needs to reach the broker's mechanism check.
func unsignedToken(sub string) string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	now := time.Now().Unix()
	return enc(`{"alg":"none"}`) + "." + enc(fmt.Sprintf(`{"sub":%q,"iat":%d,"exp":%d}`, sub, now, now+3600)) + "."
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

func fail(line string) {
	fmt.Println(line)
	os.Exit(1)
}
