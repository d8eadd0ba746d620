import csv,glob,sys,os
from sklearn.metrics import roc_auc_score,f1_score,accuracy_score
R,DS,T,tag=sys.argv[1:5]
def m(path):
    d={r['metric']:float(r['value']) for r in csv.DictReader(open(path),delimiter='\t')}
    return d
def pooled(files,pos):
    y=[];p=[];pred=[]
    for f in files:
        for r in csv.DictReader(open(f),delimiter='\t'):
            t=r['true']; q=float(r['probability_of_true'])
            y.append(t==pos); p.append(q if t==pos else 1-q); pred.append(r['predicted'])
    yt=[pos if v else 'x' for v in y]
    return len(y), accuracy_score([r for r in yt],[pos if v==pos else 'x' for v in pred]), f1_score(yt,[pos if v==pos else 'x' for v in pred],average='macro'), roc_auc_score(y,p)
folds=sorted(glob.glob(f'{R}/{DS}/fold-*'))
arms={'base':lambda f:f'{f}/{T}/evaluate','forest':lambda f:f'{f}/{T}/baseline',tag:lambda f:f'{R}/arm-{tag}/{os.path.basename(f)}/evaluate'}
for name,g in arms.items():
    rows=[m(g(f)+'/metrics.tsv') for f in folds if os.path.exists(g(f)+'/metrics.tsv')]
    mf=[r['macro_f1'] for r in rows]; roc=[r['roc_auc'] for r in rows if r['roc_auc']==r['roc_auc']]
    files=[g(f)+'/per_sample.tsv' for f in folds if os.path.exists(g(f)+'/per_sample.tsv')]
    pos=sys.argv[5] if len(sys.argv)>5 else 'IHC'
    n,a,f1,auc=pooled(files,pos)
    print(f"{name:8s} folds {len(rows)} macroF1 {sum(mf)/len(mf):.3f} per-fold {[round(x,3) for x in mf]} ROC {sum(roc)/max(len(roc),1):.3f} ({len(roc)}) | pooled n={n} acc {a:.3f} macroF1 {f1:.3f} ROC {auc:.3f}")
