"""Tabular domains of the worked examples, each built as a :class:`shaprl.mdp.TabularMDP`.

Parameters follow the papers and, where the papers lost their numbers, the authors' public
code (see each module's docstring for the source of every number).
"""
