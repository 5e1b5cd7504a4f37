/**
 * TLS material and errors: loading a certificate and key (or a CA) from files with errors a
 * person can act on, and explaining a failed handshake in one line.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { FatalError, readFlagFile } from "./cli.ts";
import { formatTimestamp } from "./time.ts";

/** A server's certificate chain and private key, PEM-encoded. */
export interface ServerTls {
  /** Certificate chain. */
  cert: string;
  /** Private key. */
  key: string;
}

/** Reads a PEM file named by `flag`, or throws a {@linkcode FatalError} saying what to do. */
export function readPem(path: string, flag: string, kind: "CERTIFICATE" | "PRIVATE KEY"): string {
  const text = readFlagFile(path, flag, "; make one with `deno task cert`");
  if (!new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) {
    throw new FatalError(`${flag}: ${path} holds no PEM ${kind.toLowerCase()}`);
  }
  return text;
}

/**
 * Warnings about a server certificate that will work for some clients but not all (a CA
 * certificate used as a server's, one that has expired or is not valid yet at `now`): the
 * server still serves with it. Only the first certificate of the chain (the server's own) is
 * looked at; one that cannot be parsed gives no warning (listening reports it), and this never
 * throws.
 */
export function certificateWarnings(tls: ServerTls | null, now: Date = new Date()): string[] {
  if (!tls) return [];
  const first = tls.cert.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/);
  if (!first) return [];
  let cert: X509Certificate;
  let notBefore: number;
  let notAfter: number;
  try {
    cert = new X509Certificate(first[0]);
    notBefore = Date.parse(cert.validFrom);
    notAfter = Date.parse(cert.validTo);
  } catch {
    return [];
  }
  const warnings: string[] = [];
  if (cert.ca) {
    warnings.push(
      "The TLS certificate (--tls-cert) is a CA certificate (CA:TRUE): ncat and openssl s_client " +
        "accept it, but rustls-based clients such as client.ts and chat_client.ts refuse it " +
        "(CaUsedAsEndEntity); make a server certificate with `deno task cert` and restart with it",
    );
  }
  if (notAfter < now.getTime()) {
    warnings.push(
      `The TLS certificate (--tls-cert) expired on ${formatTimestamp(new Date(notAfter))}: ` +
        "clients refuse it; make a new one with `deno task cert` and restart with it",
    );
  } else if (notBefore > now.getTime()) {
    warnings.push(
      `The TLS certificate (--tls-cert) is not valid until ${
        formatTimestamp(new Date(notBefore))
      }: clients refuse it until then (is this machine's clock right?)`,
    );
  }
  return warnings;
}

/**
 * Loads the server's certificate and key when both are given; `null` when neither is (plain
 * TCP). One without the other is a mistake.
 */
export function loadServerTls(certPath: string, keyPath: string): ServerTls | null {
  if (!certPath && !keyPath) return null;
  if (!certPath || !keyPath) {
    throw new FatalError(
      "TLS needs both --tls-cert and --tls-key (or TLS_CERT and TLS_KEY); make a pair with `deno task cert`",
    );
  }
  return {
    cert: readPem(certPath, "--tls-cert", "CERTIFICATE"),
    key: readPem(keyPath, "--tls-key", "PRIVATE KEY"),
  };
}

/**
 * Explains a failed TLS handshake with `where` in one line, or `null` if it is not one. `side`
 * is ours: a client blames the server's certificate, a server suspects the client.
 */
export function describeTlsFailure(
  error: unknown,
  where: string,
  side: "client" | "server" = "client",
): string | null {
  const text = error instanceof Error ? error.message : String(error);
  if (side === "server") {
    if (/UnknownCA|BadCertificate|CertificateUnknown/i.test(text)) {
      return `TLS handshake with ${where} failed: the client does not trust our certificate (${text})`;
    }
    if (
      /InvalidContentType|corrupt message|HandshakeFailure|peer is incompatible|alert|tls/i.test(
        text,
      )
    ) {
      return `TLS handshake with ${where} failed (${text}): is the client using TLS?`;
    }
    return null;
  }
  if (/CaUsedAsEndEntity/i.test(text)) {
    return `${where}'s certificate is a CA certificate (CA:TRUE), which TLS clients such as this one refuse as a server's: make a server certificate with \`deno task cert\` and restart the server with it`;
  }
  if (/UnknownIssuer|self.signed|BadSignature/i.test(text)) {
    return `${where}'s certificate is not trusted: pass the certificate (or its CA) with --ca FILE`;
  }
  if (/NotValidForName|not valid for name|CertNotValidForName/i.test(text)) {
    return `${where}'s certificate is not valid for that name: connect with a name it lists (--host localhost?)`;
  }
  if (/Expired|NotValidYet/i.test(text)) {
    return `${where}'s certificate has expired or is not valid yet`;
  }
  if (
    /InvalidContentType|corrupt message|HandshakeFailure|peer is incompatible|alert/i.test(text)
  ) {
    return `TLS handshake with ${where} failed (${text}): does the server use TLS?`;
  }
  return null;
}

/**
 * Throws the one-line hint when the first bytes a plain client reads are a TLS record: the
 * server speaks TLS and the client did not.
 */
export function rejectTlsAnswer(bytes: Uint8Array, where: string): void {
  const tlsRecord = bytes.length >= 3 && (bytes[0] === 0x15 || bytes[0] === 0x16) &&
    bytes[1] === 0x03 && bytes[2] <= 0x04;
  if (tlsRecord) {
    throw new FatalError(
      `${where} speaks TLS: run with --tls (and --ca FILE for a self-signed certificate)`,
    );
  }
}
