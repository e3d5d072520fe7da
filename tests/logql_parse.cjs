// LogQL expressions (a JSON list on stdin) parsed by Grafana's own LogQL grammar, @grafana/lezer-logql,
// printed as one syntax tree each (JSON): {name, text, error, children}. tests/logql.py runs it.
const { parser } = require("@grafana/lezer-logql");

function tree(cursor, source) {
  const node = {
    name: cursor.name,
    text: source.slice(cursor.from, cursor.to),
    error: cursor.type.isError,
    children: [],
  };
  if (cursor.firstChild()) {
    do {
      node.children.push(tree(cursor, source));
    } while (cursor.nextSibling());
    cursor.parent();
  }
  return node;
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const parsed = JSON.parse(input).map((expression) => tree(parser.parse(expression).cursor(), expression));
  process.stdout.write(JSON.stringify(parsed));
});
