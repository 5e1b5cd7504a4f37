#!/usr/bin/env -S deno run --allow-run=openssl --allow-read --allow-write
/**
 * Makes a self-signed certificate and key for the lab with the system `openssl`: valid for
 * `localhost`, `127.0.0.1` and `::1`, 365 days, P-256.
 *
 * ```sh
 * deno task cert              # certs/cert.pem and certs/key.pem
 * deno task cert ~/lab-tls    # another folder
 * ```
 *
 * Then: `deno task server --tls-cert certs/cert.pem --tls-key certs/key.pem`, and clients
 * with `--ca certs/cert.pem`.
 *
 * @module
 */

/** What {@linkcode makeCertificate} made. */
export interface CertificateFiles {
  /** The certificate (also what clients pass to `--ca`). */
  cert: string;
  /** The private key (readable by its owner only). */
  key: string;
}

/** The `openssl` arguments for a certificate valid for `names` (DNS names and IP addresses). */
export function opensslArgs(dir: string, names: readonly string[]): string[] {
  const san = names.map((n) => /^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`).join(",");
  return [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "365",
    "-subj",
    `/CN=${names[0]}`,
    "-addext",
    `subjectAltName=${san}`,
    // An end-entity certificate: rustls (Deno's TLS) refuses a CA used as a server certificate.
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-keyout",
    `${dir}/key.pem`,
    "-out",
    `${dir}/cert.pem`,
  ];
}

/** Writes `cert.pem` and `key.pem` into `dir` (made if missing). Throws with openssl's reason. */
export async function makeCertificate(
  dir: string,
  names: readonly string[] = ["localhost", "127.0.0.1", "::1"],
): Promise<CertificateFiles> {
  await Deno.mkdir(dir, { recursive: true });
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", {
      args: opensslArgs(dir, names),
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("openssl is not installed (apt-get install openssl)");
    }
    throw error;
  }
  if (output.code !== 0) {
    throw new Error(
      `openssl failed: ${new TextDecoder().decode(output.stderr).trim().split("\n")[0]}`,
    );
  }
  if (Deno.build.os !== "windows") await Deno.chmod(`${dir}/key.pem`, 0o600);
  return { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}

async function main(): Promise<void> {
  if (Deno.args.some((a) => a === "-h" || a === "--help")) {
    console.log("Usage: deno task cert [FOLDER]   (default: certs)");
    return;
  }
  const dir = Deno.args[0] ?? "certs";
  try {
    const files = await makeCertificate(dir);
    console.log(`made ${files.cert} and ${files.key} (localhost, 127.0.0.1, ::1; 365 days)`);
    console.log(`serve:   deno task server --tls-cert ${files.cert} --tls-key ${files.key}`);
    console.log(`connect: deno task client --ca ${files.cert} "hi"`);
  } catch (error) {
    console.error(`cert.ts: ${(error as Error).message}`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
