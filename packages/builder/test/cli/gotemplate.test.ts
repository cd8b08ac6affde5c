// The Go text/template subset behind --format: values printed as Go prints them, the functions
// docker users reach for, and clear errors for the rest.
import { describe, expect, it } from 'vitest';
import { compileTemplate, format, formatList } from '../../src/cli/gotemplate';

const image = {
  Id: 'sha256:abc',
  RepoTags: ['app:1', 'app:latest'],
  Config: { Env: ['PATH=/bin', 'A=1'], Labels: { version: '1.2', 'org.x': 'y' }, Cmd: null, User: '' },
  Size: 1234,
};

describe('Go templates for --format', () => {
  it('field paths print as Go prints them', () => {
    expect(compileTemplate('{{.Id}} {{.Size}} {{.Config.Env}} {{.Config.Labels}} {{.Config.Cmd}} {{.Missing.Deep}}')(image)).toBe(
      'sha256:abc 1234 [PATH=/bin A=1] map[org.x:y version:1.2] <nil> <no value>',
    );
  });

  it('json, index, join, len, upper, lower, println, pipelines', () => {
    const t = '{{json .Config.Labels}}|{{index .Config.Labels "version"}}|{{join .RepoTags ","}}|{{len .RepoTags}}|{{upper .Id}}|{{.Id | lower}}|{{println .Size}}';
    expect(compileTemplate(t)(image)).toBe('{"version":"1.2","org.x":"y"}|1.2|app:1,app:latest|2|SHA256:ABC|sha256:abc|1234\n');
  });

  it('range, if/else, trim markers, \\t and \\n escapes', () => {
    expect(compileTemplate('{{range .RepoTags}}<{{.}}>{{end}}')(image)).toBe('<app:1><app:latest>');
    expect(compileTemplate('{{range .Nothing}}x{{else}}none{{end}}')(image)).toBe('none');
    expect(compileTemplate('{{if .Config.User}}user{{else}}root{{end}}')(image)).toBe('root');
    expect(compileTemplate('a  {{- .Size -}}  b')(image)).toBe('a1234b');
    expect(compileTemplate('{{.Id}}\\t{{.Size}}\\n')(image)).toBe('sha256:abc\t1234\n');
  });

  it('refuses what it does not know, naming it', () => {
    expect(() => compileTemplate('{{frob .Id}}')(image)).toThrow(/unknown function "frob"/);
    expect(() => compileTemplate('{{.Id')).toThrow(/unclosed action/);
    expect(() => compileTemplate('{{range .RepoTags}}')).toThrow(/has no \{\{end\}\}/);
    expect(() => compileTemplate('{{end}}')).toThrow(/unexpected \{\{end\}\}/);
  });

  it('formatList: table adds a header row and aligns columns', () => {
    const out = formatList('table {{.Repository}}\\t{{.Tag}}', [{ Repository: 'busybox', Tag: 'latest' }, { Repository: 'a', Tag: 'b' }], {
      Repository: 'REPOSITORY', Tag: 'TAG',
    });
    expect(out).toBe('REPOSITORY   TAG\nbusybox      latest\na            b\n');
    expect(format([1, 'a', { b: true }])).toBe('[1 a map[b:true]]');
  });
});
