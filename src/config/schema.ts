/**
 * The one schema for cellops.yaml (README §Running it for a real cell). Every key is documented here with its
 * unit and default; cellops.example.yaml shows them all. Durations are strings in YAML and milliseconds
 * (`…Ms`) after parsing.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { plainPathProblem } from './plain-path.js';

const duration = (defaultText: string) =>
  z
    .string()
    .default(defaultText)
    .transform((text, ctx) => {
      const ms = parseDuration(text);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: 'is not a duration (write e.g. 500ms, 3s, 10m, 1h)',
        });
        return z.NEVER;
      }
      return ms;
    });

const slackId = (prefix: string, what: string) =>
  z.string().regex(new RegExp(`^${prefix}[A-Z0-9]{2,}$`), `must be a Slack ${what} id (${prefix}…)`);

const userList = z
  .object({
    /** Slack user ids (U… or W…). */
    users: z.array(z.string().regex(/^[UW][A-Z0-9]{2,}$/, 'must be a Slack user id (U… or W…)')).default([]),
    /** Slack user group ids (S…): membership is read with usergroups.users.list and cached briefly. */
    usergroups: z.array(slackId('S', 'user group')).default([]),
  })
  .strict();

const hostName = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9:][A-Za-z0-9.:_-]*$/, 'must be a host name or IP address');
const absolutePath = z.string().regex(/^\/[^\0\n\r]*$/, 'must be an absolute path on one line');
/** A path that reaches commands on a node (plain-path.ts says what plain means). */
const plainPath = z.string().superRefine((path, ctx) => {
  const problem = plainPathProblem(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});
/** A block device the data volume is attached as: /dev/sdb…/dev/sdz, /dev/xvdb…/dev/xvdz, or NVMe. */
const dataDevice = z
  .string()
  .regex(
    /^\/dev\/(?:(?:sd|xvd)[b-z]|nvme[0-9]+n[0-9]+)$/,
    'must be a data device such as /dev/sdf, /dev/xvdf or /dev/nvme1n1 (not the root device /dev/sda or /dev/xvda)',
  )
  .default('/dev/sdf');
/** systemd units and network interfaces: a letter or digit first, so no tool reads the name as an option. */
const unitOrInterfaceName = (what: string, max: number) =>
  z
    .string()
    .regex(
      new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,${max - 1}}$`),
      `must be ${what}: a letter or digit, then letters, digits, _ . @ - (at most ${max} characters)`,
    );
/**
 * A command template from the configuration: words and {placeholders} only. Quotes, `$`, backticks,
 * `;`, `|`, `&`, redirections, parentheses, backslashes and line breaks are refused, because cellops
 * quotes the values it fills in and any shell syntax in the template itself would run unquoted.
 */
const commandTemplate = (defaultText: string, placeholders: readonly string[]) =>
  z
    .string()
    .default(defaultText)
    .superRefine((template, ctx) => {
      const bad = /["'`$;|&<>()\\\n\r\0]/.exec(template)?.[0];
      if (bad !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `contains ${JSON.stringify(bad)}: a command template may hold words and ${placeholders.map((p) => `{${p}}`).join(' ')} only (no quotes, $, backticks, ; | & < > ( ) \\ or line breaks; values are quoted by cellops)`,
        });
      for (const [, name] of template.matchAll(/\{([^}]*)\}/g))
        if (!placeholders.includes(name ?? ''))
          ctx.addIssue({
            code: 'custom',
            message: `uses unknown placeholder {${name}} (known: ${placeholders.map((p) => `{${p}}`).join(' ')})`,
          });
    });
const nodeName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be lower-case letters, digits and dashes');
const url = z.url();

const ipAlias = z
  .object({
    method: z.literal('alias'),
    /** The VIP in CIDR form, e.g. 10.0.1.100/24. */
    address: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'must be an IPv4 address with prefix, e.g. 10.0.1.100/24'),
    /** Network interface on both hosts, e.g. eth0. */
    device: unitOrInterfaceName('an interface name such as eth0', 15),
  })
  .strict();
const ipEip = z
  .object({
    method: z.literal('eip'),
    /** The Elastic IP's allocation id (eipalloc-…). */
    allocationId: z
      .string()
      .regex(/^eipalloc-[0-9a-z]+$/, 'must be an Elastic IP allocation id (eipalloc-…)'),
  })
  .strict();
const ipManual = z
  .object({
    method: z.literal('manual'),
    /** Shown to the approver who confirms the move was done, e.g. the load balancer or router to change. */
    instructions: z.string().optional(),
  })
  .strict();

const nodekeyBackup = z
  .object({
    /** Inventory name of the host that keeps the backup. */
    host: nodeName,
    path: plainPath,
  })
  .strict();

const failover = z
  .object({
    mode: z.enum(['standby', 'snapshot']),
    /** mode standby: the inventory name of the standby (role standby). */
    standby: nodeName.optional(),
    ip: z.discriminatedUnion('method', [ipAlias, ipEip, ipManual]),
    nodekeyBackup,
    /** mode snapshot: how to launch the replacement instance. */
    launch: z
      .object({
        instanceType: z.string().min(1),
        subnetId: z.string().regex(/^subnet-[0-9a-z]+$/, 'must be a subnet id (subnet-…)'),
        securityGroupIds: z
          .array(z.string().regex(/^sg-[0-9a-z]+$/, 'must be a security group id (sg-…)'))
          .min(1),
        keyName: z.string().optional(),
        /** Device name the restored data volume is attached as. Default /dev/sdf. */
        dataDevice,
        /**
         * How the replacement's SSH host key is known. `console` (default): the keys cloud-init prints on the
         * instance's console (EC2 GetConsoleOutput) are pinned for it, unless known_hosts has an entry for its
         * address (patterns included), which is then used. `known_hosts`: only known_hosts (host keys baked
         * into the image and a subnet pattern such as `10.0.2.*`).
         */
        hostKeys: z.enum(['console', 'known_hosts']).default('console'),
      })
      .strict()
      .optional(),
    /** mode snapshot: PNs whose data volume may be snapshotted, in order of preference. */
    snapshotFrom: z.array(nodeName).optional(),
    /**
     * mode snapshot: `fsfreeze -f` the PN's DATA_DIR file system (its mount point must be the PN's dataDir)
     * around CreateSnapshot, after kpnd stopped and `sync`. Default false: a stopped kpnd plus `sync`
     * already leaves the volume consistent; freezing also blocks writes of anything else on that volume.
     */
    freeze: z.boolean().default(false),
    /**
     * mode snapshot: a secondary private IP of the CN (CIDR form, on `device` of the replacement) that the
     * PNs' static-nodes.json dial. It moves with the Elastic IP (UnassignPrivateIpAddresses on the failed
     * CN's interface, AssignPrivateIpAddresses on the replacement's). A primary private IP cannot move: PNs
     * that dial it cannot reach a replacement, which `/cell check` reports.
     */
    privateIp: z
      .object({
        address: z
          .string()
          .regex(
            /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/,
            'must be an IPv4 address with prefix, e.g. 10.0.2.50/24',
          ),
        /** The replacement's network interface, e.g. eth0 or ens5. Default eth0. */
        device: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name such as eth0')
          .default('eth0'),
      })
      .strict()
      .optional(),
    /** mode snapshot: the machine image to launch from; else the latest recorded by `/cell image`. */
    imageId: z
      .string()
      .regex(/^ami-[0-9a-z]+$/, 'must be an AMI id (ami-…)')
      .optional(),
  })
  .strict();

const node = z
  .object({
    role: z.enum(['cn', 'standby', 'pn']),
    host: hostName,
    /** Prometheus endpoint. Default http://<host>:61001/metrics. */
    metrics: url.optional(),
    /** HTTP JSON-RPC endpoint, when RPC_ENABLE=1 on the node. Off by default on kcnd. */
    rpc: url.optional(),
    /** DATA_DIR of kcnd.conf / kpnd.conf. */
    dataDir: plainPath.default('/var/kcnd/data'),
    /** systemd unit name: kcnd for CNs and standbys, kpnd for PNs. */
    service: unitOrInterfaceName('a systemd unit name such as kcnd', 256).optional(),
    /** EC2 instance id when the node runs on EC2. */
    instanceId: z
      .string()
      .regex(/^i-[0-9a-f]+$/, 'must be an EC2 instance id (i-…)')
      .optional(),
    /** EBS volume id that holds DATA_DIR (PNs used for snapshots; CNs for image exclusion). */
    dataVolumeId: z
      .string()
      .regex(/^vol-[0-9a-z]+$/, 'must be an EBS volume id (vol-…)')
      .optional(),
    /** Device name of the DATA_DIR volume, left out of machine images. Default /dev/sdf. */
    dataDevice,
    failover: failover.optional(),
  })
  .strict();

/** The name of an environment variable that holds a secret; the secret itself never goes in the file. */
const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be the NAME of an environment variable (A–Z, 0–9, _), not the secret');
/** A pager endpoint: http(s) without credentials (those come from the environment). */
const pagerUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).refine(
  // Runs even when the URL check failed; only a URL that parses can carry credentials.
  (text) => !URL.canParse(text) || (new URL(text).username === '' && new URL(text).password === ''),
  'must not carry credentials (put the key in the environment variable instead)',
);

/**
 * Paging the on-call (src/escalation). Optional: without it nothing is paged and approvals are not
 * reminded. Secrets come only from the environment variables named here, checked when the bot starts.
 */
const escalation = z
  .object({
    /** PagerDuty Events API v2. POST {url}/v2/enqueue. */
    pagerduty: z
      .object({
        /** Environment variable holding the integration (routing) key. */
        routingKeyEnv: envName,
        /** Default https://events.pagerduty.com. */
        url: pagerUrl.default('https://events.pagerduty.com'),
      })
      .strict()
      .optional(),
    /** Opsgenie Alert API. POST {url}/v2/alerts… */
    opsgenie: z
      .object({
        /** Environment variable holding the API integration's key (sent as `GenieKey <key>`). */
        apiKeyEnv: envName,
        /** Default https://api.opsgenie.com (EU: https://api.eu.opsgenie.com). */
        url: pagerUrl.default('https://api.opsgenie.com'),
      })
      .strict()
      .optional(),
    /** A signed JSON webhook (schema in docs/escalation.md). */
    webhook: z
      .object({
        url: pagerUrl,
        /** Environment variable holding the HMAC-SHA256 key. */
        secretEnv: envName,
      })
      .strict()
      .optional(),
    /** An alert not acknowledged in Slack by then is paged. Default 5m. */
    pageAfter: duration('5m'),
    /** An approval waiting this long gets a reminder in its thread mentioning the approvers. Default 5m. */
    approvalReminder: duration('5m'),
    /** An approval waiting this long is paged. Default 10m. */
    approvalPage: duration('10m'),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.pageAfter <= 0)
      ctx.addIssue({ code: 'custom', path: ['pageAfter'], message: 'must be longer than 0s' });
    if (value.approvalReminder <= 0)
      ctx.addIssue({ code: 'custom', path: ['approvalReminder'], message: 'must be longer than 0s' });
    if (value.approvalPage <= value.approvalReminder) {
      ctx.addIssue({
        code: 'custom',
        path: ['approvalPage'],
        message: 'must be longer than approvalReminder (people are reminded in Slack before they are paged)',
      });
    }
  });

export const configSchema = z
  .object({
    /** Name of the Core Cell, shown in messages. */
    cell: z.string().min(1),
    slack: z
      .object({
        /** Channel id for alerts and runs (C… or G…). */
        channel: z.string().regex(/^[CG][A-Z0-9]{2,}$/, 'must be a Slack channel id (C… or G…)'),
        /** May approve destructive steps (and start runbooks). */
        approvers: userList,
        /** May start runbooks and mute alerts. */
        operators: userList.prefault({}),
        /** The requester of a run may not approve its steps. Default true. */
        fourEyes: z.boolean().default(true),
        /** Distinct approvers needed per destructive step. Default 1. */
        approvals: z.number().int().min(1).max(5).default(1),
        /** An approval request expires after this long and the run pauses. Default 15m. */
        approvalTimeout: duration('15m'),
      })
      .strict(),
    ssh: z
      .object({
        /** Login user on every host; privileged work goes through `sudo -n`. */
        user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'must be a Unix user name'),
        /**
         * Path of the private key (OpenSSH or PEM format), readable by the bot's user only (mode 600).
         * Optional when `agent` is true.
         */
        privateKey: absolutePath.optional(),
        /** Name of the environment variable holding the private key's passphrase. Default SSH_KEY_PASSPHRASE. */
        passphraseEnv: z
          .string()
          .regex(
            /^[A-Za-z_][A-Za-z0-9_]*$/,
            'must be an environment variable name such as SSH_KEY_PASSPHRASE',
          )
          .default('SSH_KEY_PASSPHRASE'),
        /** Authenticate with the ssh-agent at SSH_AUTH_SOCK (before the key file, when both are set). Default false. */
        agent: z.boolean().default(false),
        /**
         * Accept hosts that only offer the SHA-1 `ssh-rsa` host-key signature. Default false: RSA host keys are
         * verified with rsa-sha2-512/256, which every OpenSSH since 7.2 offers.
         */
        allowSha1Rsa: z.boolean().default(false),
        /** OpenSSH known_hosts file; host keys are always verified (plain and hashed entries). */
        knownHosts: absolutePath,
        /** SSH port on every host. Default 22. */
        port: z.number().int().min(1).max(65535).default(22),
        bastion: z
          .object({
            host: hostName,
            user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, 'must be a Unix user name'),
            port: z.number().int().min(1).max(65535).default(22),
          })
          .strict()
          .optional(),
        /** Connect timeout. Default 10s. */
        connectTimeout: duration('10s'),
        /** Default timeout of one command. Default 2m. */
        commandTimeout: duration('2m'),
        /**
         * The host helper (deploy/host/cellops-host) at this path on every host, e.g.
         * /usr/local/sbin/cellops-host: privileged work then runs only as its fixed verbs, with the run's
         * fencing token, and the hosts' sudoers allows nothing else. Absent: `sudo -n <tool>` directly.
         */
        hostHelper: absolutePath.optional(),
        /** How services are started and stopped. {action}: start|stop|is-active; {service}: the unit. */
        serviceCommand: commandTemplate('sudo -n systemctl {action} {service}', ['action', 'service']),
        /** How IPC is reached. {binary}: kcn|kpn; {js}: the expression; {dataDir}: the node's DATA_DIR. */
        attachCommand: commandTemplate('sudo -n {binary} attach --exec {js} {dataDir}/klay.ipc', [
          'binary',
          'js',
          'dataDir',
        ]),
      })
      .strict(),
    monitor: z
      .object({
        /** Probe every node this often. Default 3s (kcnd refreshes its metrics every 3 s). */
        interval: duration('3s'),
        /** A CN more than this many blocks behind the reference is lagging. Default 10. */
        lagBlocks: z.number().int().min(1).default(10),
        /** …for at least this long. Default 10s. */
        for: duration('10s'),
        /** A height that has not moved for this long is stalled. Default 15s. */
        stall: duration('15s'),
        /** Consecutive failed probes before a node is down. Default 3. */
        failures: z.number().int().min(1).default(3),
        /** Extra reference endpoints (JSON-RPC URLs) besides the PNs. */
        referenceEndpoints: z.array(url).default([]),
        /** How often the readiness check runs per CN. Default 1h; 0s turns it off. */
        checkInterval: duration('1h'),
      })
      .strict()
      .prefault({}),
    aws: z
      .object({
        /** EC2 region. Default: the SDK's chain (AWS_REGION). */
        region: z.string().optional(),
      })
      .strict()
      .prefault({}),
    redis: z
      .object({
        /** Prefix of every key cellops writes. Default cellops:<cell>:. */
        prefix: z.string().optional(),
      })
      .strict()
      .prefault({}),
    runs: z
      .object({
        /**
         * How long a finished run is kept (its record, approvals, audit stream and place in `/cell runs`);
         * Redis then drops it. Default 90d.
         */
        retention: duration('90d').refine((ms) => ms >= 86_400_000, 'must be at least 1d'),
        /** Dry runs one person may start per minute; more are refused until the minute is over. Default 5. */
        dryRunsPerMinute: z.number().int().min(1).max(1_000).default(5),
      })
      .strict()
      .prefault({}),
    nodes: z.record(nodeName, node),
    escalation: escalation.optional(),
  })
  .strict();

/** The configuration file as parsed; durations in milliseconds. */
export type ParsedConfig = z.output<typeof configSchema>;
export type NodeConfig = ParsedConfig['nodes'][string];
export type FailoverConfig = NonNullable<NodeConfig['failover']>;
export type IpMoveConfig = FailoverConfig['ip'];
export type ParsedEscalation = NonNullable<ParsedConfig['escalation']>;
