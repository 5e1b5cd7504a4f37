/**
 * TLS material and errors: loading a certificate and key (or a CA) from files with errors a
 * person can act on, and explaining a failed handshake in one line.
 *
 * @module
 */
import { FatalError, readFlagFile } from "./cli.ts";

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
 * Warnings for a server about to listen: on an address other than loopback without TLS,
 * messages (and a chat password, if one is set) cross the network in clear text.
 */
export function clearTextWarnings(
  host: string,
  tls: boolean,
  hasPassword = false,
): string[] {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  const loopback = h === "localhost" || h === "::1" || h.startsWith("127.");
  if (tls || loopback) return [];
  const warnings = [
    `listening on ${host} without TLS: messages travel in clear text; use --tls-cert and --tls-key (make a pair with \`deno task cert\`)`,
  ];
  if (hasPassword) warnings.push("the chat password travels in clear text too: use TLS");
  return warnings;
}

/** Whether `bytes` start like a TLS record (a server answering in TLS to a plain client). */
export function looksLikeTls(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03 &&
    bytes[2] <= 0x04;
}

/** The one line for a plain client that reached a TLS server. */
export function tlsServerHint(where: string): string {
  return `${where} speaks TLS: run with --tls (and --ca FILE for a self-signed certificate)`;
}
