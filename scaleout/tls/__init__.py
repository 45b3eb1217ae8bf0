"""Certificates for tls: local and the trust stores."""
