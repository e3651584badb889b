"""tools/analysis/zoo_sweep.py: runs the chosen zoo cases for real and writes
their table between the markers of a markdown file; refuses, before running
anything, a file without markers and a filter that matches no case."""
import mmlocal  # noqa: F401
import pytest

from checkout import load_tool


def _tool():
    return load_tool('tools/analysis/zoo_sweep.py')


def test_writes_the_table_of_the_chosen_case_between_the_markers(tmp_path):
    tool = _tool()
    doc = tmp_path / 'zoo.md'
    doc.write_text(f'before\n{tool.BEGIN}\nold table\n{tool.END}\nafter\n')
    table = tool.main(['--only', 'mobilenet-v3-small', '--out', str(doc)])
    rows = [line for line in table.splitlines() if line.startswith('| `')]
    assert len(rows) == 1 and 'mmpretrain::mobilenet_v3/mobilenet-v3-small' in rows[0]
    assert '| MobileNetV3 | 4 | DGL |' in rows[0] and '| pass |' in rows[0], rows[0]
    assert '1 of 1 cases pass' in table
    text = doc.read_text()
    assert 'old table' not in text
    assert text == f'before\n{tool.BEGIN}\n{table}\n{tool.END}\nafter\n'


def test_refuses_a_file_without_markers_and_an_empty_selection(tmp_path, capsys):
    tool = _tool()
    doc = tmp_path / 'plain.md'
    doc.write_text('no table here\n')
    with pytest.raises(SystemExit):
        tool.main(['--only', 'mobilenet-v3-small', '--out', str(doc)])
    assert 'markers' in capsys.readouterr().err
    assert doc.read_text() == 'no table here\n'
    with pytest.raises(SystemExit):
        tool.main(['--only', 'no-such-config', '--out', '-'])
    assert 'matches no case' in capsys.readouterr().err
