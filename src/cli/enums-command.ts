import type { Command } from 'commander';
import { type VppEnumName, vppEnums } from '../domain/enums.js';
import { errors } from '../domain/errors.js';
import { type GraphEnum, type Language, languages } from '../domain/graph-enum.js';
import type { CliIo } from './io.js';

interface EnumsOptions {
  readonly lang: string;
  readonly json?: boolean;
}

/** `vppd enums [NAME] [VALUE]`: the Graph enums of the VPP surface, or one value decoded. */
export function registerEnumsCommand(program: Command, io: CliIo): void {
  program
    .command('enums')
    .description(
      'print the Graph enums of the VPP surface, or decode a value (e.g. `enums vppTokenSyncStatus 3`)',
    )
    .argument('[name]', `enum name: ${Object.keys(vppEnums).join(', ')}`)
    .argument('[value]', 'a numeric value (as in Intune report exports) or a member name to look up')
    .option('--lang <lang>', `description language: ${languages.join(' or ')}`, 'en')
    .option('--json', 'print JSON instead of a table')
    .action((name: string | undefined, value: string | undefined, options: EnumsOptions) => {
      const lang = parseLanguage(options.lang);
      if (name === undefined) {
        const all = Object.values(vppEnums) as GraphEnum<string>[];
        io.stdout(
          options.json
            ? `${JSON.stringify(
                all.map((e) => enumJson(e, lang)),
                null,
                2,
              )}\n`
            : all.map((e) => enumTable(e, lang)).join('\n'),
        );
        return;
      }
      const graphEnum = findEnum(name);
      if (value === undefined) {
        io.stdout(
          options.json
            ? `${JSON.stringify(enumJson(graphEnum, lang), null, 2)}\n`
            : enumTable(graphEnum, lang),
        );
        return;
      }
      const member = lookUpMember(graphEnum, value);
      const found = graphEnum.member(member);
      if (options.json) {
        const json = {
          enum: graphEnum.name,
          member: found.name,
          value: found.value,
          description: found.description[lang],
        };
        io.stdout(`${JSON.stringify(json, null, 2)}\n`);
      } else {
        io.stdout(`${graphEnum.name} ${found.value} = ${found.name}: ${found.description[lang]}\n`);
      }
    });
}

function parseLanguage(lang: string): Language {
  if ((languages as readonly string[]).includes(lang)) return lang as Language;
  throw errors.badRequest(`--lang must be one of ${languages.join(', ')} (got '${lang}')`);
}

function findEnum(name: string): GraphEnum<string> {
  if (Object.hasOwn(vppEnums, name)) return vppEnums[name as VppEnumName] as GraphEnum<string>;
  throw errors.badRequest(`unknown enum '${name}'; known enums: ${Object.keys(vppEnums).join(', ')}`);
}

function lookUpMember(graphEnum: GraphEnum<string>, value: string): string {
  // Every member is visible here, including those past unknownFutureValue: this is a lookup tool.
  const options = { includeUnknownEnumMembers: true };
  if (/^-?\d+$/.test(value)) {
    const allowed = graphEnum.members.map((m) => m.value).join(', ');
    if (!graphEnum.members.some((m) => m.value === Number(value))) {
      throw errors.badRequest(`${value} is not a value of ${graphEnum.name}; values: ${allowed}`);
    }
    return graphEnum.fromValue(Number(value), options);
  }
  if (!graphEnum.is(value, options)) {
    throw errors.badRequest(
      `'${value}' is not a member of ${graphEnum.name}; members: ${graphEnum.names.join(', ')}`,
    );
  }
  return value;
}

function enumJson(graphEnum: GraphEnum<string>, lang: Language) {
  return {
    name: graphEnum.name,
    evolvable: graphEnum.evolvable,
    members: graphEnum.members.map((m) => ({
      name: m.name,
      value: m.value,
      description: m.description[lang],
      ...(m.versions ? { versions: m.versions } : {}),
    })),
  };
}

function enumTable(graphEnum: GraphEnum<string>, lang: Language): string {
  const heading = lang === 'ru' ? ['элемент', 'значение', 'описание'] : ['member', 'value', 'description'];
  const kind = graphEnum.evolvable
    ? lang === 'ru'
      ? 'расширяемое'
      : 'evolvable'
    : lang === 'ru'
      ? 'закрытое'
      : 'closed';
  const rows = graphEnum.members.map((m) => [
    m.name,
    String(m.value),
    m.description[lang] + (m.versions ? ` [${m.versions.join(', ')}]` : ''),
  ]);
  const widths = [0, 1].map((i) => Math.max(heading[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `  ${cells[0]!.padEnd(widths[0]!)}  ${cells[1]!.padEnd(widths[1]!)}  ${cells[2]}`.trimEnd();
  return [`${graphEnum.name} (${kind})`, line(heading), ...rows.map(line), ''].join('\n');
}
