# ruff: noqa
# mypy: ignore-errors
"""Generated from templates/report.html.j2 by `python -m ci_gate.reports.html --compile`; do not edit."""
SOURCE_SHA256 = 'f1d4d7c4a2517e561e15bd7df5757aa00d761f64c87f347d8e809a437c3e6fe8'
from jinja2.runtime import LoopContext, Macro, Markup, Namespace, TemplateNotFound, TemplateReference, TemplateRuntimeError, Undefined, escape, identity, internalcode, markup_join, missing, str_join
name = 'report.html.j2'

def root(context, missing=missing):
    resolve = context.resolve_or_missing
    undefined = environment.undefined
    concat = environment.concat
    cond_expr_undefined = Undefined
    if 0: yield None
    l_0_csp = resolve('csp')
    l_0_final_action = resolve('final_action')
    l_0_image = resolve('image')
    l_0_css = resolve('css')
    l_0_final_action_reason = resolve('final_action_reason')
    l_0_stop_issues = resolve('stop_issues')
    l_0_issue_counts = resolve('issue_counts')
    l_0_warn_issues = resolve('warn_issues')
    l_0_unchecked = resolve('unchecked')
    l_0_counts = resolve('counts')
    l_0_rules_checked = resolve('rules_checked')
    l_0_policy_name = resolve('policy_name')
    l_0_policy_id = resolve('policy_id')
    l_0_evaluated_at = resolve('evaluated_at')
    l_0_allowlisted = resolve('allowlisted')
    l_0_vulnerabilities = resolve('vulnerabilities')
    l_0_layers = resolve('layers')
    l_0_issues = resolve('issues')
    l_0_expired = resolve('expired')
    l_0_requirements = resolve('requirements')
    l_0_stig = resolve('stig')
    l_0_row_height = resolve('row_height')
    l_0_identity = resolve('identity')
    l_0_digest = resolve('digest')
    l_0_distro = resolve('distro')
    l_0_dockerfile = resolve('dockerfile')
    l_0_matched_mapping = resolve('matched_mapping')
    l_0_tool_version = resolve('tool_version')
    l_0_backend = resolve('backend')
    l_0_guide_link = resolve('guide_link')
    l_0_warnings = resolve('warnings')
    l_0_badge = l_0_plural = l_0_issue_table = l_0_stops = l_0_warns = missing
    try:
        t_1 = environment.filters['advice']
    except KeyError:
        @internalcode
        def t_1(*unused):
            raise TemplateRuntimeError("No filter named 'advice' found.")
    try:
        t_2 = environment.filters['capitalize']
    except KeyError:
        @internalcode
        def t_2(*unused):
            raise TemplateRuntimeError("No filter named 'capitalize' found.")
    try:
        t_3 = environment.filters['format']
    except KeyError:
        @internalcode
        def t_3(*unused):
            raise TemplateRuntimeError("No filter named 'format' found.")
    try:
        t_4 = environment.filters['join']
    except KeyError:
        @internalcode
        def t_4(*unused):
            raise TemplateRuntimeError("No filter named 'join' found.")
    try:
        t_5 = environment.filters['length']
    except KeyError:
        @internalcode
        def t_5(*unused):
            raise TemplateRuntimeError("No filter named 'length' found.")
    try:
        t_6 = environment.filters['list']
    except KeyError:
        @internalcode
        def t_6(*unused):
            raise TemplateRuntimeError("No filter named 'list' found.")
    try:
        t_7 = environment.filters['map']
    except KeyError:
        @internalcode
        def t_7(*unused):
            raise TemplateRuntimeError("No filter named 'map' found.")
    try:
        t_8 = environment.filters['max']
    except KeyError:
        @internalcode
        def t_8(*unused):
            raise TemplateRuntimeError("No filter named 'max' found.")
    try:
        t_9 = environment.filters['replace']
    except KeyError:
        @internalcode
        def t_9(*unused):
            raise TemplateRuntimeError("No filter named 'replace' found.")
    try:
        t_10 = environment.filters['selectattr']
    except KeyError:
        @internalcode
        def t_10(*unused):
            raise TemplateRuntimeError("No filter named 'selectattr' found.")
    try:
        t_11 = environment.filters['sum']
    except KeyError:
        @internalcode
        def t_11(*unused):
            raise TemplateRuntimeError("No filter named 'sum' found.")
    try:
        t_12 = environment.filters['truncate']
    except KeyError:
        @internalcode
        def t_12(*unused):
            raise TemplateRuntimeError("No filter named 'truncate' found.")
    pass
    def macro(l_1_action):
        t_13 = []
        if l_1_action is missing:
            l_1_action = undefined("parameter 'action' was not provided", name='action')
        pass
        t_13.extend((
            '<span class="badge ',
            escape(t_9(context.eval_ctx, l_1_action, ' ', '-')),
            '">',
            escape(l_1_action),
            '</span>',
        ))
        return concat(t_13)
    context.exported_vars.add('badge')
    context.vars['badge'] = l_0_badge = Macro(environment, macro, 'badge', ('action',), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_n, l_1_word):
        t_14 = []
        if l_1_n is missing:
            l_1_n = undefined("parameter 'n' was not provided", name='n')
        if l_1_word is missing:
            l_1_word = undefined("parameter 'word' was not provided", name='word')
        pass
        t_14.extend((
            escape(l_1_n),
            ' ',
            escape(l_1_word),
            escape(('s' if (l_1_n != 1) else cond_expr_undefined("the inline if-expression on line 4 in 'report.html.j2' evaluated to false and no else section was defined."))),
        ))
        return concat(t_14)
    context.exported_vars.add('plural')
    context.vars['plural'] = l_0_plural = Macro(environment, macro, 'plural', ('n', 'word'), False, False, False, context.eval_ctx.autoescape)
    def macro(l_1_rows, l_1_id, l_1_caption):
        t_15 = []
        if l_1_rows is missing:
            l_1_rows = undefined("parameter 'rows' was not provided", name='rows')
        if l_1_id is missing:
            l_1_id = undefined("parameter 'id' was not provided", name='id')
        if l_1_caption is missing:
            l_1_caption = undefined("parameter 'caption' was not provided", name='caption')
        pass
        t_15.extend((
            '<div class="table"><table class="stack" id="',
            escape(l_1_id),
            '-table">\n<caption>',
            escape(l_1_caption),
            '</caption>\n<thead><tr><th scope="col">Finding</th><th scope="col">Where</th><th scope="col">How to fix</th><th scope="col">Rules</th></tr></thead>\n<tbody>\n',
        ))
        for l_2_f in l_1_rows:
            _loop_vars = {}
            pass
            t_15.extend((
                '<tr class="',
                escape(environment.getattr(l_2_f, 'action')),
                '">\n<th scope="row">',
                escape(context.call((undefined(name='badge') if l_0_badge is missing else l_0_badge), environment.getattr(l_2_f, 'action'), _loop_vars=_loop_vars)),
                ' ',
                escape(environment.getattr(l_2_f, 'title')),
            ))
            if environment.getattr(l_2_f, 'severity'):
                pass
                t_15.extend((
                    ' <span class="muted">(',
                    escape(environment.getattr(l_2_f, 'severity')),
                ))
                if environment.getattr(l_2_f, 'score'):
                    pass
                    t_15.extend((
                        ', ',
                        escape(environment.getattr(l_2_f, 'score')),
                    ))
                t_15.append(
                    ')</span>',
                )
            if (environment.getattr(l_2_f, 'count') > 1):
                pass
                t_15.extend((
                    ' <span class="muted">(',
                    escape(environment.getattr(l_2_f, 'count')),
                    ' findings)</span>',
                ))
            t_15.extend((
                '</th>\n<td data-label="Where">',
                escape((environment.getattr(l_2_f, 'location') or 'the image')),
            ))
            if environment.getattr(l_2_f, 'origin'):
                pass
                t_15.extend((
                    ' <span class="muted">(',
                    escape(environment.getattr(l_2_f, 'origin')),
                    ')</span>',
                ))
            t_15.extend((
                '</td>\n<td data-label="How to fix">',
                escape(t_1(environment.getattr(l_2_f, 'recommendation'))),
            ))
            if environment.getattr(l_2_f, 'expired_on'):
                pass
                t_15.extend((
                    ' <strong>Exception expired ',
                    escape(environment.getattr(l_2_f, 'expired_on')),
                    '.</strong>',
                ))
            if environment.getattr(l_2_f, 'fix'):
                pass
                t_15.extend((
                    '<pre aria-label="Suggested change to ',
                    escape(environment.getattr(environment.getattr(l_2_f, 'fix'), 'location')),
                    '">',
                    escape(environment.getattr(environment.getattr(l_2_f, 'fix'), 'location')),
                    escape(('' if environment.getattr(environment.getattr(l_2_f, 'fix'), 'exact') else ' (adapt before applying)')),
                    '\n',
                    escape(environment.getattr(environment.getattr(l_2_f, 'fix'), 'diff')),
                    '</pre>',
                ))
            t_15.extend((
                '</td>\n<td data-label="Rules" class="mono">',
                escape(t_4(context.eval_ctx, environment.getattr(l_2_f, 'rules'), ', ')),
                '</td>\n</tr>\n',
            ))
        l_2_f = missing
        t_15.append(
            '</tbody></table></div>\n',
        )
        return concat(t_15)
    context.exported_vars.add('issue_table')
    context.vars['issue_table'] = l_0_issue_table = Macro(environment, macro, 'issue_table', ('rows', 'id', 'caption'), False, False, False, context.eval_ctx.autoescape)
    yield '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta http-equiv="Content-Security-Policy" content="'
    yield escape((undefined(name='csp') if l_0_csp is missing else l_0_csp))
    yield '">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<meta name="referrer" content="no-referrer">\n<title>ci-gate '
    yield escape((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action))
    yield ': '
    yield escape((undefined(name='image') if l_0_image is missing else l_0_image))
    yield '</title>\n<style>'
    yield escape((undefined(name='css') if l_0_css is missing else l_0_css))
    yield '</style>\n</head>\n<body>\n<a class="skip" href="#main">Skip to the report</a>\n<main id="main">\n<header class="verdict '
    yield escape((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action))
    yield '" id="verdict">\n<h1>'
    yield escape((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action))
    yield ': <span class="image">'
    yield escape((undefined(name='image') if l_0_image is missing else l_0_image))
    yield '</span></h1>\n<p>\n'
    if (((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action) == 'STOP') and ((undefined(name='final_action_reason') if l_0_final_action_reason is missing else l_0_final_action_reason) == 'denylisted')):
        pass
        yield 'This image is denylisted by the policy and must not be pushed.\n'
    elif ((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action) == 'STOP'):
        pass
        yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), (undefined(name='stop_issues') if l_0_stop_issues is missing else l_0_stop_issues), 'finding'))
        yield ' must be fixed before this image can be pushed ('
        yield escape(environment.getattr((undefined(name='issue_counts') if l_0_issue_counts is missing else l_0_issue_counts), 'STOP'))
        yield ')'
        if (undefined(name='warn_issues') if l_0_warn_issues is missing else l_0_warn_issues):
            pass
            yield '; '
            yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), (undefined(name='warn_issues') if l_0_warn_issues is missing else l_0_warn_issues), 'warning'))
            yield ' ('
            yield escape(environment.getattr((undefined(name='issue_counts') if l_0_issue_counts is missing else l_0_issue_counts), 'WARN'))
            yield ')'
        yield '.\n'
    elif ((undefined(name='final_action') if l_0_final_action is missing else l_0_final_action) == 'WARN'):
        pass
        yield 'The image may be pushed; '
        yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), (undefined(name='warn_issues') if l_0_warn_issues is missing else l_0_warn_issues), 'warning'))
        yield ' should be fixed ('
        yield escape(environment.getattr((undefined(name='issue_counts') if l_0_issue_counts is missing else l_0_issue_counts), 'WARN'))
        yield ').\n'
    else:
        pass
        yield 'The image may be pushed.'
        if (undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked):
            pass
            yield ' '
            yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), t_5((undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked)), 'rule'))
            yield ' could not be checked (see below).'
    yield '</p>\n<ul class="counts" aria-label="Counts">\n<li id="count-stop">'
    yield escape(environment.getattr((undefined(name='counts') if l_0_counts is missing else l_0_counts), 'stop'))
    yield ' STOP</li>\n<li id="count-warn">'
    yield escape(environment.getattr((undefined(name='counts') if l_0_counts is missing else l_0_counts), 'warn'))
    yield ' WARN</li>\n<li id="count-allowlisted">'
    yield escape(environment.getattr((undefined(name='counts') if l_0_counts is missing else l_0_counts), 'allowlisted'))
    yield ' allowlisted</li>\n'
    if environment.getattr((undefined(name='counts') if l_0_counts is missing else l_0_counts), 'expired'):
        pass
        yield '<li id="count-expired">'
        yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), environment.getattr((undefined(name='counts') if l_0_counts is missing else l_0_counts), 'expired'), 'expired exception'))
        yield '</li>'
    yield '<li id="count-rules">'
    yield escape((undefined(name='rules_checked') if l_0_rules_checked is missing else l_0_rules_checked))
    yield ' rules checked</li>\n'
    if (undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked):
        pass
        yield '<li id="count-unchecked">'
        yield escape(t_5((undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked)))
        yield ' not checked</li>'
    yield '</ul>\n<p>Policy '
    yield escape((undefined(name='policy_name') if l_0_policy_name is missing else l_0_policy_name))
    yield ' (<span class="mono">'
    yield escape((undefined(name='policy_id') if l_0_policy_id is missing else l_0_policy_id))
    yield '</span>) · evaluated '
    yield escape(((undefined(name='evaluated_at') if l_0_evaluated_at is missing else l_0_evaluated_at) or 'now'))
    yield '</p>\n</header>\n\n<nav aria-label="Sections"><ul>\n<li><a href="#stop">STOP ('
    yield escape((undefined(name='stop_issues') if l_0_stop_issues is missing else l_0_stop_issues))
    yield ')</a></li>\n<li><a href="#warn">WARN ('
    yield escape((undefined(name='warn_issues') if l_0_warn_issues is missing else l_0_warn_issues))
    yield ')</a></li>\n<li><a href="#exceptions">Exceptions ('
    yield escape(t_5((undefined(name='allowlisted') if l_0_allowlisted is missing else l_0_allowlisted)))
    yield ')</a></li>\n<li><a href="#vulnerabilities">Vulnerabilities ('
    yield escape(t_11(environment, t_7(context, context.call(environment.getattr((undefined(name='vulnerabilities') if l_0_vulnerabilities is missing else l_0_vulnerabilities), 'values')), 'length')))
    yield ')</a></li>\n<li><a href="#compliance">Compliance</a></li>\n<li><a href="#layers">Layers ('
    yield escape(t_5((undefined(name='layers') if l_0_layers is missing else l_0_layers)))
    yield ')</a></li>\n<li><a href="#image">Image</a></li>\n</ul></nav>\n\n'
    l_0_stops = t_6(context.eval_ctx, t_10(context, (undefined(name='issues') if l_0_issues is missing else l_0_issues), 'action', 'equalto', 'STOP'))
    context.vars['stops'] = l_0_stops
    context.exported_vars.add('stops')
    l_0_warns = t_6(context.eval_ctx, t_10(context, (undefined(name='issues') if l_0_issues is missing else l_0_issues), 'action', 'equalto', 'WARN'))
    context.vars['warns'] = l_0_warns
    context.exported_vars.add('warns')
    yield '<section id="stop" aria-labelledby="stop-heading">\n<h2 id="stop-heading">Must be fixed: '
    yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), t_5((undefined(name='stops') if l_0_stops is missing else l_0_stops)), 'STOP finding'))
    yield '</h2>\n'
    if (undefined(name='stops') if l_0_stops is missing else l_0_stops):
        pass
        yield escape(context.call((undefined(name='issue_table') if l_0_issue_table is missing else l_0_issue_table), (undefined(name='stops') if l_0_stops is missing else l_0_stops), 'stop', 'STOP findings, worst first, with how to fix each'))
    else:
        pass
        yield '<p>No STOP findings.</p>'
    yield '</section>\n\n<section id="warn" aria-labelledby="warn-heading">\n<h2 id="warn-heading">Should be fixed: '
    yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), t_5((undefined(name='warns') if l_0_warns is missing else l_0_warns)), 'warning'))
    yield '</h2>\n'
    if (undefined(name='warns') if l_0_warns is missing else l_0_warns):
        pass
        yield escape(context.call((undefined(name='issue_table') if l_0_issue_table is missing else l_0_issue_table), (undefined(name='warns') if l_0_warns is missing else l_0_warns), 'warn', 'WARN findings, with how to fix each'))
    else:
        pass
        yield '<p>No warnings.</p>'
    yield '</section>\n\n'
    if (undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked):
        pass
        yield '<section id="unchecked" aria-labelledby="unchecked-heading">\n<h2 id="unchecked-heading">Not checked: '
        yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), t_5((undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked)), 'rule'))
        yield '</h2>\n<p>These rules could not check anything; they count as not checked, never as a pass.</p>\n<ul>'
        for l_1_u in (undefined(name='unchecked') if l_0_unchecked is missing else l_0_unchecked):
            _loop_vars = {}
            pass
            yield '<li><span class="mono">'
            yield escape(environment.getattr(l_1_u, 'gate'))
            yield '/'
            yield escape(environment.getattr(l_1_u, 'trigger'))
            yield '</span> ('
            yield escape(environment.getattr(l_1_u, 'rule_id'))
            yield '): '
            yield escape(environment.getattr(l_1_u, 'reason'))
            yield '</li>'
        l_1_u = missing
        yield '</ul>\n</section>\n'
    yield '\n<section id="exceptions" aria-labelledby="exceptions-heading">\n<h2 id="exceptions-heading">Exceptions: '
    yield escape(t_5((undefined(name='allowlisted') if l_0_allowlisted is missing else l_0_allowlisted)))
    yield ' in force, '
    yield escape(t_5((undefined(name='expired') if l_0_expired is missing else l_0_expired)))
    yield ' expired</h2>\n'
    if (undefined(name='allowlisted') if l_0_allowlisted is missing else l_0_allowlisted):
        pass
        yield '<div class="table"><table class="stack" id="exceptions-table">\n<caption>Findings covered by an exception (they do not fail the gate)</caption>\n<thead><tr><th scope="col">Finding</th><th scope="col">Declared</th><th scope="col">Exception</th><th scope="col">Reason</th><th scope="col">Approved by</th><th scope="col">Expires</th></tr></thead>\n<tbody>\n'
        for l_1_f in (undefined(name='allowlisted') if l_0_allowlisted is missing else l_0_allowlisted):
            _loop_vars = {}
            pass
            yield '<tr><th scope="row">'
            yield escape(environment.getattr(l_1_f, 'title'))
            yield '</th><td data-label="Declared">'
            yield escape(context.call((undefined(name='badge') if l_0_badge is missing else l_0_badge), environment.getattr(l_1_f, 'declared_action'), _loop_vars=_loop_vars))
            yield '</td><td data-label="Exception" class="mono">'
            yield escape(environment.getattr(environment.getattr(l_1_f, 'exception'), 'id'))
            yield '</td><td data-label="Reason">'
            yield escape((environment.getattr(environment.getattr(l_1_f, 'exception'), 'reason') or '—'))
            yield '</td><td data-label="Approved by">'
            yield escape((environment.getattr(environment.getattr(l_1_f, 'exception'), 'approved_by') or '—'))
            yield '</td><td data-label="Expires">'
            yield escape((environment.getattr(environment.getattr(l_1_f, 'exception'), 'expires_on') or 'never'))
            yield '</td></tr>\n'
        l_1_f = missing
        yield '</tbody></table></div>\n'
    else:
        pass
        yield '<p>No finding is covered by an exception.</p>'
    if (undefined(name='expired') if l_0_expired is missing else l_0_expired):
        pass
        yield '<h3>Expired exceptions (their findings count again)</h3>\n<ul>'
        for l_1_e in (undefined(name='expired') if l_0_expired is missing else l_0_expired):
            _loop_vars = {}
            pass
            yield '<li><span class="mono">'
            yield escape(environment.getattr(l_1_e, 'allowlist_id'))
            yield '/'
            yield escape(environment.getattr(l_1_e, 'item_id'))
            yield '</span> ('
            yield escape(environment.getattr(l_1_e, 'gate'))
            yield ' '
            yield escape(environment.getattr(l_1_e, 'trigger_id'))
            yield ') expired '
            yield escape(environment.getattr(l_1_e, 'expires_on'))
            if environment.getattr(l_1_e, 'approved_by'):
                pass
                yield ', approved by '
                yield escape(environment.getattr(l_1_e, 'approved_by'))
            if environment.getattr(l_1_e, 'reason'):
                pass
                yield ': '
                yield escape(environment.getattr(l_1_e, 'reason'))
            yield '</li>'
        l_1_e = missing
        yield '</ul>\n'
    yield '</section>\n\n<section id="vulnerabilities" aria-labelledby="vulnerabilities-heading">\n<h2 id="vulnerabilities-heading">Vulnerabilities by severity</h2>\n'
    if (undefined(name='vulnerabilities') if l_0_vulnerabilities is missing else l_0_vulnerabilities):
        pass
        yield '<p>'
        l_1_loop = missing
        for (l_1_severity, l_1_rows), l_1_loop in LoopContext(context.call(environment.getattr((undefined(name='vulnerabilities') if l_0_vulnerabilities is missing else l_0_vulnerabilities), 'items')), undefined):
            _loop_vars = {}
            pass
            yield escape(t_5(l_1_rows))
            yield ' '
            yield escape(l_1_severity)
            yield escape((', ' if (not environment.getattr(l_1_loop, 'last')) else cond_expr_undefined("the inline if-expression on line 110 in 'report.html.j2' evaluated to false and no else section was defined.")))
        l_1_loop = l_1_severity = l_1_rows = missing
        yield '</p>\n'
        for (l_1_severity, l_1_rows) in context.call(environment.getattr((undefined(name='vulnerabilities') if l_0_vulnerabilities is missing else l_0_vulnerabilities), 'items')):
            _loop_vars = {}
            pass
            yield '<h3 id="severity-'
            yield escape(l_1_severity)
            yield '">'
            yield escape(t_2(l_1_severity))
            yield ' ('
            yield escape(t_5(l_1_rows))
            yield ')</h3>\n<div class="table"><table class="stack">\n<thead><tr><th scope="col">Vulnerability</th><th scope="col">Package</th><th scope="col">Installed</th><th scope="col">Fixed in</th><th scope="col">Layer</th><th scope="col">Score</th><th scope="col">Action</th></tr></thead>\n<tbody>\n'
            for l_2_v in l_1_rows:
                _loop_vars = {}
                pass
                yield '<tr><th scope="row">'
                if environment.getattr(l_2_v, 'url'):
                    pass
                    yield '<a href="'
                    yield escape(environment.getattr(l_2_v, 'url'))
                    yield '" rel="noopener noreferrer">'
                    yield escape(environment.getattr(l_2_v, 'id'))
                    yield '</a>'
                else:
                    pass
                    yield escape(environment.getattr(l_2_v, 'id'))
                yield '</th><td data-label="Package">'
                yield escape(environment.getattr(l_2_v, 'package'))
                yield '</td><td data-label="Installed" class="mono">'
                yield escape(environment.getattr(l_2_v, 'version'))
                yield '</td><td data-label="Fixed in" class="mono">'
                yield escape((environment.getattr(l_2_v, 'fixed') or 'no fix yet'))
                yield '</td><td data-label="Layer">'
                yield escape((environment.getattr(l_2_v, 'origin') or 'unknown'))
                yield '</td><td data-label="Score">'
                yield escape(environment.getattr(l_2_v, 'score'))
                yield '</td><td data-label="Action">'
                yield escape(context.call((undefined(name='badge') if l_0_badge is missing else l_0_badge), environment.getattr(l_2_v, 'action'), _loop_vars=_loop_vars))
                yield '</td></tr>\n'
            l_2_v = missing
            yield '</tbody></table></div>\n'
        l_1_severity = l_1_rows = missing
    else:
        pass
        yield '<p>No vulnerability findings.</p>'
    yield '</section>\n\n<section id="compliance" aria-labelledby="compliance-heading">\n<h2 id="compliance-heading">Compliance</h2>\n<p>Status: FAIL a STOP finding; WARN a WARN finding; EXCEPTION every finding is covered by an exception; NOT CHECKED a rule behind it could not check anything; PASS checked and nothing found.</p>\n<div class="table"><table class="stack" id="compliance-table">\n<caption>Guide section → status → evidence → controls</caption>\n<thead><tr><th scope="col">Requirement</th><th scope="col">Status</th><th scope="col">Evidence</th><th scope="col">How to fix</th><th scope="col">Controls</th></tr></thead>\n<tbody>\n'
    l_1_loop = missing
    for l_1_r, l_1_loop in LoopContext((undefined(name='requirements') if l_0_requirements is missing else l_0_requirements), undefined):
        _loop_vars = {}
        pass
        yield '<tr><th scope="row">'
        yield escape(environment.getattr(l_1_r, 'framework'))
        yield ' '
        yield escape(environment.getattr(l_1_r, 'item'))
        yield '<br><span class="muted">'
        yield escape(environment.getattr(l_1_r, 'title'))
        yield '</span></th><td data-label="Status">'
        yield escape(context.call((undefined(name='badge') if l_0_badge is missing else l_0_badge), environment.getattr(l_1_r, 'status'), _loop_vars=_loop_vars))
        if environment.getattr(l_1_r, 'expired'):
            pass
            yield ' <strong>expired exception</strong>'
        yield '</td><td data-label="Evidence">'
        l_2_loop = missing
        for l_2_e, l_2_loop in LoopContext(environment.getattr(l_1_r, 'evidence'), undefined):
            _loop_vars = {}
            pass
            yield escape(l_2_e)
            if (not environment.getattr(l_2_loop, 'last')):
                pass
                yield '<br>'
        l_2_loop = l_2_e = missing
        yield '</td><td data-label="How to fix">'
        yield escape(t_1(environment.getattr(l_1_r, 'recommendation')))
        yield '</td><td data-label="Controls" class="mono">'
        yield escape(t_4(context.eval_ctx, environment.getattr(l_1_r, 'controls'), ', '))
        yield '</td></tr>\n'
    l_1_loop = l_1_r = missing
    yield '</tbody></table></div>\n'
    if (undefined(name='stig') if l_0_stig is missing else l_0_stig):
        pass
        yield '<h3 id="stig">STIG findings by category</h3>\n<p id="stig-totals">'
        yield escape(environment.getitem(environment.getattr((undefined(name='stig') if l_0_stig is missing else l_0_stig), 'totals'), 'CAT I'))
        yield ' CAT I · '
        yield escape(environment.getitem(environment.getattr((undefined(name='stig') if l_0_stig is missing else l_0_stig), 'totals'), 'CAT II'))
        yield ' CAT II · '
        yield escape(environment.getitem(environment.getattr((undefined(name='stig') if l_0_stig is missing else l_0_stig), 'totals'), 'CAT III'))
        yield ' CAT III</p>\n'
        if environment.getattr((undefined(name='stig') if l_0_stig is missing else l_0_stig), 'rows'):
            pass
            yield '<div class="table"><table class="stack">\n<thead><tr><th scope="col">Category</th><th scope="col">Finding</th><th scope="col">Action</th><th scope="col">Details</th></tr></thead>\n<tbody>'
            for l_1_s in environment.getattr((undefined(name='stig') if l_0_stig is missing else l_0_stig), 'rows'):
                _loop_vars = {}
                pass
                yield '<tr><th scope="row">'
                yield escape(environment.getattr(l_1_s, 'category'))
                yield '</th><td data-label="Finding">'
                yield escape(environment.getattr(l_1_s, 'title'))
                yield '</td><td data-label="Action">'
                yield escape(context.call((undefined(name='badge') if l_0_badge is missing else l_0_badge), environment.getattr(l_1_s, 'action'), _loop_vars=_loop_vars))
                yield '</td><td data-label="Details">'
                yield escape(environment.getattr(l_1_s, 'text'))
                yield '</td></tr>'
            l_1_s = missing
            yield '</tbody>\n</table></div>\n'
    yield '</section>\n\n<section id="layers" aria-labelledby="layers-heading">\n<h2 id="layers-heading">Layers: what each added</h2>\n'
    if (undefined(name='layers') if l_0_layers is missing else l_0_layers):
        pass
        l_0_row_height = 44
        context.vars['row_height'] = l_0_row_height
        context.exported_vars.add('row_height')
        yield '<svg class="chart" id="layer-chart" role="img" aria-labelledby="layer-chart-title" viewBox="0 0 640 '
        yield escape(((t_5((undefined(name='layers') if l_0_layers is missing else l_0_layers)) * (undefined(name='row_height') if l_0_row_height is missing else l_0_row_height)) + 8))
        yield '" width="640" height="'
        yield escape(((t_5((undefined(name='layers') if l_0_layers is missing else l_0_layers)) * (undefined(name='row_height') if l_0_row_height is missing else l_0_row_height)) + 8))
        yield '">\n<title id="layer-chart-title">Layer sizes: '
        l_1_loop = missing
        for l_1_l, l_1_loop in LoopContext((undefined(name='layers') if l_0_layers is missing else l_0_layers), undefined):
            _loop_vars = {}
            pass
            yield 'layer '
            yield escape(environment.getattr(l_1_l, 'index'))
            yield ' '
            yield escape(environment.getattr(l_1_l, 'size_text'))
            yield escape(('; ' if (not environment.getattr(l_1_loop, 'last')) else cond_expr_undefined("the inline if-expression on line 152 in 'report.html.j2' evaluated to false and no else section was defined.")))
        l_1_loop = l_1_l = missing
        yield '</title>\n'
        l_1_loop = missing
        for l_1_l, l_1_loop in LoopContext((undefined(name='layers') if l_0_layers is missing else l_0_layers), undefined):
            l_1_y = missing
            _loop_vars = {}
            pass
            l_1_y = (environment.getattr(l_1_loop, 'index0') * (undefined(name='row_height') if l_0_row_height is missing else l_0_row_height))
            _loop_vars['y'] = l_1_y
            yield '<text x="0" y="'
            yield escape(((undefined(name='y') if l_1_y is missing else l_1_y) + 14))
            yield '">#'
            yield escape(environment.getattr(l_1_l, 'index'))
            yield ' '
            yield escape((environment.getattr(l_1_l, 'origin') or 'layer'))
            yield ' · '
            yield escape(environment.getattr(l_1_l, 'size_text'))
            yield ' · '
            yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), environment.getattr(l_1_l, 'packages'), 'package', _loop_vars=_loop_vars))
            yield ' · '
            yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), environment.getattr(l_1_l, 'findings'), 'finding', _loop_vars=_loop_vars))
            yield ' · '
            yield escape(t_12(environment, environment.getattr(l_1_l, 'created_by'), 48, True, '…'))
            yield '</text>\n<rect class="'
            yield escape((environment.getattr(l_1_l, 'origin') or 'unknown'))
            yield '" x="0" y="'
            yield escape(((undefined(name='y') if l_1_y is missing else l_1_y) + 20))
            yield '" height="16" width="'
            yield escape(t_3('%.1f', t_8(environment, [(environment.getattr(l_1_l, 'bar') * 636), 2])))
            yield '" rx="2"></rect>\n'
        l_1_loop = l_1_l = l_1_y = missing
        yield '</svg>\n<p class="legend" aria-hidden="true"><span class="base"></span>base image <span class="app"></span>added by the build</p>\n<div class="table"><table class="stack" id="layers-table">\n<thead><tr><th scope="col">Layer</th><th scope="col">Origin</th><th scope="col">Size</th><th scope="col">Packages</th><th scope="col">Findings</th><th scope="col">Created by</th></tr></thead>\n<tbody>'
        for l_1_l in (undefined(name='layers') if l_0_layers is missing else l_0_layers):
            _loop_vars = {}
            pass
            yield '<tr><th scope="row">#'
            yield escape(environment.getattr(l_1_l, 'index'))
            yield '</th><td data-label="Origin">'
            yield escape((environment.getattr(l_1_l, 'origin') or 'unknown'))
            yield '</td><td data-label="Size">'
            yield escape(environment.getattr(l_1_l, 'size_text'))
            yield '</td><td data-label="Packages">'
            yield escape(environment.getattr(l_1_l, 'packages'))
            yield '</td><td data-label="Findings">'
            yield escape(environment.getattr(l_1_l, 'findings'))
            yield '</td><td data-label="Created by" class="mono">'
            yield escape(t_12(environment, environment.getattr(l_1_l, 'created_by'), 300, True, '…'))
            yield '</td></tr>'
        l_1_l = missing
        yield '</tbody>\n</table></div>\n'
    else:
        pass
        yield '<p>No layer information (the image came from a directory or an SBOM).</p>'
    yield '</section>\n\n<section id="image" aria-labelledby="image-heading">\n<h2 id="image-heading">Image</h2>\n<dl class="identity">\n<dt>Name</dt><dd>'
    yield escape((undefined(name='image') if l_0_image is missing else l_0_image))
    yield '</dd>\n<dt>Reference</dt><dd>'
    yield escape(environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'reference'))
    yield '</dd>\n<dt>Manifest digest</dt><dd class="mono">'
    yield escape((environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'manifest_digest') or (undefined(name='digest') if l_0_digest is missing else l_0_digest)))
    yield '</dd>\n<dt>Config digest</dt><dd class="mono">'
    yield escape((environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'config_digest') or '—'))
    yield '</dd>\n'
    if environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'repo_tags'):
        pass
        yield '<dt>Tags</dt><dd>'
        yield escape(environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'repo_tags'))
        yield '</dd>'
    if environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'repo_digests'):
        pass
        yield '<dt>Repository digests</dt><dd class="mono">'
        yield escape(environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'repo_digests'))
        yield '</dd>'
    yield '<dt>Platform</dt><dd>'
    yield escape((environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'platform') or '—'))
    yield '</dd>\n<dt>Created</dt><dd>'
    yield escape((environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'created') or '—'))
    yield '</dd>\n<dt>Distribution</dt><dd>'
    yield escape(((undefined(name='distro') if l_0_distro is missing else l_0_distro) or '—'))
    yield '</dd>\n'
    if environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'base_image'):
        pass
        yield '<dt>Base image</dt><dd>'
        yield escape(environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'base_image'))
        yield '</dd>'
    yield '<dt>Size</dt><dd>'
    yield escape(environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'size'))
    yield ' in '
    yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), t_5((undefined(name='layers') if l_0_layers is missing else l_0_layers)), 'layer'))
    yield ', '
    yield escape(context.call((undefined(name='plural') if l_0_plural is missing else l_0_plural), environment.getattr((undefined(name='identity') if l_0_identity is missing else l_0_identity), 'packages'), 'package'))
    yield '</dd>\n'
    if (undefined(name='dockerfile') if l_0_dockerfile is missing else l_0_dockerfile):
        pass
        yield '<dt>Dockerfile</dt><dd>'
        yield escape((undefined(name='dockerfile') if l_0_dockerfile is missing else l_0_dockerfile))
        yield '</dd>'
    yield '<dt>Policy</dt><dd>'
    yield escape((undefined(name='policy_name') if l_0_policy_name is missing else l_0_policy_name))
    yield ' ('
    yield escape((undefined(name='policy_id') if l_0_policy_id is missing else l_0_policy_id))
    yield ')'
    if (undefined(name='matched_mapping') if l_0_matched_mapping is missing else l_0_matched_mapping):
        pass
        yield ', mapping '
        yield escape((undefined(name='matched_mapping') if l_0_matched_mapping is missing else l_0_matched_mapping))
    yield '</dd>\n</dl>\n</section>\n\n<footer>\n<p>ci-gate '
    yield escape((undefined(name='tool_version') if l_0_tool_version is missing else l_0_tool_version))
    yield ' ('
    yield escape((undefined(name='backend') if l_0_backend is missing else l_0_backend))
    yield ' backend)'
    if (undefined(name='guide_link') if l_0_guide_link is missing else l_0_guide_link):
        pass
        yield ' · <a href="'
        yield escape((undefined(name='guide_link') if l_0_guide_link is missing else l_0_guide_link))
        yield '" rel="noopener noreferrer">How to fix findings</a>'
    yield '</p>\n'
    for l_1_w in (undefined(name='warnings') if l_0_warnings is missing else l_0_warnings):
        _loop_vars = {}
        pass
        yield '<p>'
        yield escape(l_1_w)
        yield '</p>'
    l_1_w = missing
    yield '</footer>\n</main>\n</body>\n</html>'

blocks = {}
debug_info = '3=115&4=130&5=146&6=157&7=159&10=162&11=167&12=169&13=197&14=208&15=217&16=226&17=231&26=242&29=244&30=248&35=250&36=252&38=256&40=259&41=261&42=273&43=276&45=283&49=289&50=291&51=293&52=295&53=301&54=303&56=309&60=315&61=317&62=319&63=321&65=323&69=325&70=328&72=332&73=334&77=341&78=343&81=350&83=353&85=355&90=370&91=374&96=377&97=381&101=398&103=401&109=426&110=430&111=439&112=443&116=449&117=453&131=484&132=488&135=515&137=518&138=524&141=527&149=542&150=544&151=548&152=553&153=564&154=568&155=571&156=585&162=593&170=615&171=617&172=619&173=621&174=623&175=628&176=634&177=636&178=638&179=640&180=646&181=652&182=658&187=667&188=677'
