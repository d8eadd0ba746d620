# Which sample representations generalise across subjects? Grouped folds (scikit-learn StratifiedGroupKFold, seed 42;
# 2 for moving-pictures, 5 otherwise), a random forest and a logistic regression on each representation.
# Run with the test venv: .venv/bin/python docs/benchmark/probe_representations.py (about 5 minutes on 2 cores).
import sys, itertools, numpy as np, pandas as pd, biom
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, f1_score
from sklearn.preprocessing import StandardScaler
import os
D=os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../shared/data/')
tasks=[('moving-pictures','body-site','subject'),('circadian-ihc','exposure_type','host_subject_id'),('ibd-2538','ibd','host_subject_id')]
def kmer_matrix(seqs,k):
    idx={''.join(p):i for i,p in enumerate(itertools.product('ACGT',repeat=k))}
    M=np.zeros((len(seqs),4**k),np.float32)
    for r,s in enumerate(seqs):
        for j in range(len(s)-k+1):
            i=idx.get(s[j:j+k]); 
            if i is not None: M[r,i]+=1
        M[r]/=max(1,M[r].sum())
    return M
for ds,col,grp in tasks:
    t=biom.load_table(D+ds+'/table.biom'); md=pd.read_csv(D+ds+'/metadata.tsv',sep='\t',dtype=str).set_index('sample_id')
    ids=[s for s in t.ids() if s in md.index and isinstance(md.loc[s,col],str) and not md.loc[s,col].startswith('Missing') and md.loc[s,col] not in ('not applicable','not provided')]
    X=t.filter(ids,inplace=False).matrix_data.T.toarray().astype(np.float64); seqs=list(t.ids('observation'))
    y=md.loc[ids,col].values; g=md.loc[ids,grp].values; classes=sorted(set(y))
    P=X/X.sum(1,keepdims=True)
    reps={'relab':P}
    for k in (4,6):
        K=kmer_matrix(seqs,k); reps[f'kmer{k}']=P@K
    # top-64 by abundance only
    top=np.argsort(-X,1)[:,:64]; Pt=np.zeros_like(P); 
    for r in range(len(P)): Pt[r,top[r]]=X[r,top[r]]
    Pt/=Pt.sum(1,keepdims=True); reps['relab_top64']=Pt
    K6=kmer_matrix(seqs,6); reps['kmer6_top64']=Pt@K6
    nf=2 if ds=='moving-pictures' else 5
    cv=StratifiedGroupKFold(nf,shuffle=True,random_state=42)
    res={}
    for name,R in reps.items():
        for model in ('rf','lr'):
            f1s=[];aucs=[]
            for tr,te in cv.split(R,y,g):
                if model=='rf': m=RandomForestClassifier(500,n_jobs=2,random_state=0)
                else: m=LogisticRegression(C=1.0,max_iter=2000)
                Rt=R if model=='rf' else np.log(R*1e4+1) if name.startswith('relab') else StandardScaler().fit(R[tr]).transform(R)
                m.fit(Rt[tr],y[tr]); p=m.predict(Rt[te]); pr=m.predict_proba(Rt[te])
                f1s.append(f1_score(y[te],p,average='macro'))
                if len(set(y[te]))==len(classes):
                    aucs.append(roc_auc_score(y[te],pr[:,1]) if len(classes)==2 else roc_auc_score(y[te],pr,multi_class='ovr',labels=m.classes_))
            print(ds,col,name,model,'F1 %.3f'%np.mean(f1s),'AUC %.3f'%(np.mean(aucs) if aucs else np.nan),flush=True)
